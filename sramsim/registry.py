"""Networks by name (timm style): one registry class for sramsim's and neuralfuse's tables.

A :class:`Registry` maps case-insensitive names to factories, each with what the network declares
about itself (:class:`NetworkInfo`): its kind, the keyword arguments it needs from the caller's
context (``needs``, e.g. the input shape for a network whose size depends on it) and whether it
stores weights in the accelerator's memory. Every registry raises the same errors. This module
imports nothing of the project, so any module can use it without an import cycle.

    >>> BLOCKS = Registry("block", context=("input_shape",))
    >>> @BLOCKS.register("Tiny")
    ... def tiny() -> nn.Module:
    ...     return nn.Identity()
    >>> BLOCKS.names(), type(BLOCKS.create("tiny", input_shape=(3, 8, 8))).__name__
    (['Tiny'], 'Identity')
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from torch import nn

Factory = TypeVar("Factory", bound=Callable[..., nn.Module])


class UnknownNetworkError(KeyError, ValueError):
    """A name that is not registered (a KeyError and a ValueError, so either catches it)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class NetworkInfo:
    """What a registered network declares about itself."""

    name: str  # as registered (listings keep this spelling)
    factory: Callable[..., nn.Module]
    kind: str | None = None  # e.g. "model" or "generator", in registries that have kinds
    needs: tuple[str, ...] = ()  # context keyword arguments the factory requires
    stores_weights: bool = True  # False: nothing of it is read from the weight memory


class Registry:
    """Factories by name; lookups ignore case, listings keep each name's registered spelling.

    ``context`` names keyword arguments that callers may always pass to :meth:`create`: each
    goes only to the networks that list it in their ``needs``. ``kinds``, when given, are the
    kinds a network may be registered as.
    """

    def __init__(self, what: str, *, context: Sequence[str] = (), kinds: Sequence[str] = ()) -> None:
        self.what, self.context, self.kinds = what, tuple(context), tuple(kinds)
        self._entries: dict[str, NetworkInfo] = {}

    def add(self, name: str, factory: Callable[..., nn.Module], *, kind: str | None = None,
            needs: Sequence[str] = (), stores_weights: bool = True) -> None:
        """Register ``factory`` as ``name``; the same registration again is a no-op."""
        if self.kinds and kind not in self.kinds:
            raise ValueError(f"kind={kind!r} is unknown: use one of {', '.join(self.kinds)}")
        if not callable(factory):
            raise TypeError(f"factory for {name!r} is not callable")
        unknown = sorted(set(needs) - set(self.context))
        if unknown:
            raise ValueError(f"{self.what} {name!r} needs {unknown}, which callers do not pass: "
                             f"use names from {list(self.context)}")
        info = NetworkInfo(name, factory, kind, tuple(needs), stores_weights)
        taken = self._entries.get(name.casefold())
        if taken is not None and taken != info:
            raise ValueError(f"{self.what} name {name!r} is already registered (as {taken.name!r})")
        self._entries[name.casefold()] = info

    def register(self, name: str, **info) -> Callable[[Factory], Factory]:
        """Decorator form of :meth:`add`: registers a class or function, returns it unchanged."""

        def decorate(factory: Factory) -> Factory:
            self.add(name, factory, **info)
            return factory

        return decorate

    def names(self, kind: str | None = None) -> list[str]:
        """Registered names (of ``kind``, if given), sorted case-insensitively."""
        if kind is not None and self.kinds and kind not in self.kinds:
            raise ValueError(f"kind={kind!r} is unknown: use one of {', '.join(self.kinds)}")
        return sorted((e.name for e in self._entries.values() if kind is None or e.kind == kind),
                      key=str.casefold)

    def info(self, name: str) -> NetworkInfo:
        """What ``name`` (any case) declared; UnknownNetworkError listing the known names if none."""
        entry = self._entries.get(name.casefold()) if isinstance(name, str) else None
        if entry is None:
            raise UnknownNetworkError(f"unknown {self.what} {name!r}; known: "
                                      f"{', '.join(self.names()) or 'none'}")
        return entry

    def create(self, name: str, **kwargs) -> nn.Module:
        """Build ``name`` (any case) with ``kwargs``; context arguments go only where needed."""
        entry = self.info(name)
        passed = {k: v for k, v in kwargs.items() if k not in self.context or k in entry.needs}
        return entry.factory(**passed)
