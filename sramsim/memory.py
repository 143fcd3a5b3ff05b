"""How a deployment stores weights: one frozen, validated value (:class:`MemoryConfig`).

    >>> memory = MemoryConfig(bits=4, storage="robust")
    >>> memory.describe()
    '4-bit robust, stuck-at, arrays, 14nm-512x64'
    >>> MemoryConfig.from_dict({"bits": 4}) == memory.replace(storage="symmetric")
    True
"""
from __future__ import annotations

import dataclasses
import os
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
        """A copy with ``changes`` (field names), checked as a new one is."""
        return dataclasses.replace(self, **changes)

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
