"""A registry of networks by name, so the CLI can count accesses of models it does not define.

sramsim defines no networks itself. Packages register theirs through the entry-point group
``sramsim.models``: each entry point is a callable taking the register function, e.g. in
setup.cfg ``neuralfuse = neuralfuse.registry:register_all`` with ::

    def register_all(register):
        register("resnet18", make_resnet18, "model")
        register("ConvL", make_convl, "generator")

Entry points are loaded on first lookup. Names are matched case-insensitively and keep their
registered spelling in listings.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Callable

from torch import nn

ENTRY_POINT_GROUP = "sramsim.models"
NETWORK_KINDS = ("model", "generator")


class UnknownNetworkError(KeyError, ValueError):
    """A network name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class _Entry:
    name: str
    factory: Callable[..., nn.Module]
    kind: str


_registry: dict[str, _Entry] = {}
_entry_points_loaded = False


def register_network(name: str, factory: Callable[..., nn.Module], kind: str = "model") -> None:
    """Register ``factory`` (called with keyword arguments, returns an nn.Module) as ``name``.

    Registering the same factory again under a name is a no-op; another factory under a taken
    name (in any letter case) is an error.
    """
    if kind not in NETWORK_KINDS:
        raise ValueError(f"kind={kind!r} is unknown: use one of {', '.join(NETWORK_KINDS)}")
    if not callable(factory):
        raise TypeError(f"factory for {name!r} is not callable")
    taken = _registry.get(name.lower())
    if taken is not None and (taken.factory is not factory or taken.kind != kind):
        raise ValueError(f"network name {name!r} is already registered (as {taken.name!r})")
    _registry[name.lower()] = _Entry(name, factory, kind)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()(register_network)
        except Exception as exc:  # a broken plug-in must not hide the others
            warnings.warn(f"sramsim.models entry point {ep.name!r} ({ep.value}) failed: {exc}",
                          stacklevel=2)


def list_networks(kind: str | None = None) -> list[str]:
    """Registered network names (of one ``kind``, "model" or "generator", if given), sorted."""
    if kind is not None and kind not in NETWORK_KINDS:
        raise ValueError(f"kind={kind!r} is unknown: use one of {', '.join(NETWORK_KINDS)}")
    _load_entry_points()
    return sorted((e.name for e in _registry.values() if kind is None or e.kind == kind),
                  key=str.lower)


def network_kind(name: str) -> str:
    """"model" or "generator" for a registered name."""
    return _lookup(name).kind


def create_network(name: str, **kwargs) -> nn.Module:
    """Build the registered network ``name`` (any letter case), passing ``kwargs`` to its factory.

    Unknown names raise a KeyError listing the known ones.
    """
    return _lookup(name).factory(**kwargs)


def _lookup(name: str) -> _Entry:
    _load_entry_points()
    entry = _registry.get(str(name).lower())
    if entry is None:
        known = ", ".join(list_networks()) or "none (is neuralfuse installed?)"
        raise UnknownNetworkError(f"unknown network {name!r}; known: {known}")
    return entry

