"""How a deployment stores weights: one frozen, validated value (:class:`MemoryConfig`).

    >>> memory = MemoryConfig(bits=4, storage="robust")
    >>> memory.describe()
    '4-bit robust, stuck-at, arrays, 14nm-512x64'
    >>> MemoryConfig.from_dict({"bits": 4}) == memory.replace(storage="symmetric")
    True

A run records its config as one dict, ``"memory": {...}`` (:meth:`MemoryConfig.to_dict`); records
written before the config existed hold flat keys (``bits``, ``tech``, ``fault_model``,
``layout``, no storage format). :func:`split_memory` and :meth:`MemoryConfig.from_record` read
both:

    >>> MemoryConfig.from_record({"bits": 4, "fault_model": "flip", "epochs": 3}).describe()
    '4-bit symmetric, flip, arrays, 14nm-512x64'
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import characterization
from characterization import DEFAULT_TECH
from sramsim import layouts, storage as storage_formats
from sramsim.faults import DEFAULT_FAULT_MODEL, check_fault_model
from sramsim.quant import check_bits


@dataclass(frozen=True)
class MemoryConfig:
    """Weights stored as ``bits``-bit codes (2..8) of storage format ``storage``
    (:mod:`sramsim.storage`) in SRAM of technology ``tech`` (a name or a technology file), whose
    faulty cells act by ``fault_model`` (:mod:`sramsim.faults`) on the bits that ``layout`` maps
    them to (:mod:`sramsim.layouts`). Every field is checked on construction."""

    bits: int = 8
    storage: str = storage_formats.DEFAULT_STORAGE
    tech: str = DEFAULT_TECH
    fault_model: str = DEFAULT_FAULT_MODEL
    layout: str = layouts.DEFAULT_LAYOUT

    def __post_init__(self) -> None:
        check_bits(self.bits)
        storage_formats.get(self.storage)
        object.__setattr__(self, "tech", os.fspath(self.tech))
        characterization.load(self.tech)   # names the known technologies if it is none
        check_fault_model(self.fault_model)
        layouts.check_layout(self.layout, self.bits)

    def replace(self, **changes: Any) -> MemoryConfig:
        """A copy with ``changes`` (field names), checked as a new one is; a change that is None
        (e.g. an option not given) keeps the field."""
        return dataclasses.replace(self, **{name: value for name, value in changes.items() if value is not None})

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-serializable dict (for run records)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> MemoryConfig:
        """A config from :meth:`to_dict`'s dict; missing keys take their defaults (older records),
        unknown keys are refused."""
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(record) - set(fields))
        if unknown:
            raise ValueError(f"unknown memory-config keys {unknown}: use {', '.join(fields)}")
        return cls(**record)

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> MemoryConfig:
        """The config a run record or checkpoint metadata holds (see :func:`split_memory`)."""
        return split_memory(record)[0]

    def describe(self) -> str:
        """A short line, e.g. ``"8-bit symmetric, stuck-at, arrays, 14nm-512x64"``."""
        return f"{self.bits}-bit {self.storage}, {self.fault_model}, {self.layout}, {self.tech}"

    @property
    def storage_format(self) -> storage_formats.StorageFormat:
        """The :class:`~sramsim.storage.StorageFormat` named by ``storage``."""
        return storage_formats.get(self.storage)

    @property
    def fault_layout(self) -> layouts.Layout:
        """The :class:`~sramsim.layouts.Layout` named by ``layout``."""
        return layouts.get(self.layout)


FIELDS = tuple(field.name for field in dataclasses.fields(MemoryConfig))
"""The fields of :class:`MemoryConfig`, in order: bits, storage, tech, fault_model, layout."""


def recorded_memory(record: Mapping[str, Any]) -> dict[str, Any]:
    """The memory config a record holds, as the plain dict :meth:`MemoryConfig.to_dict` gives, not
    checked (a record may name a technology file that is gone): its ``"memory"``, or its flat
    :data:`FIELDS` (a record written before the config existed); a field missing takes its default.

    >>> recorded_memory({"bits": 4, "tech": "my-curve", "epochs": 3})["tech"]
    'my-curve'
    """
    defaults = {field.name: field.default for field in dataclasses.fields(MemoryConfig)}
    given = record.get("memory") or {name: record[name] for name in FIELDS if name in record}
    return {**defaults, **given}


def split_memory(settings: Mapping[str, Any]) -> tuple[MemoryConfig, dict[str, Any]]:
    """(the memory config, the other entries) of ``settings``, which give the config as
    ``"memory"`` (a :class:`MemoryConfig` or its dict) or as flat keys :data:`FIELDS` (records
    written before the config existed; grid specs); a field missing takes its default. Both forms
    at once raise a ValueError naming the flat keys.

    >>> split_memory({"memory": {"bits": 6}, "epochs": 3})
    (MemoryConfig(bits=6, storage='symmetric', tech='14nm-512x64', fault_model='stuck-at', layout='arrays'), {'epochs': 3})
    """
    flat = {name: settings[name] for name in FIELDS if name in settings}
    rest = {key: value for key, value in settings.items() if key not in FIELDS and key != "memory"}
    given = settings.get("memory")
    if given is None:
        return MemoryConfig(**flat), rest
    if flat:
        raise ValueError(f"give the memory config as memory= or as {', '.join(flat)}, not both")
    return (given if isinstance(given, MemoryConfig) else MemoryConfig.from_dict(given)), rest
