"""Name → factory tables (timm style) and the hook that hands neuralfuse's networks to sramsim.

Two registries use :class:`Registry`: ``neuralfuse.generators`` and ``neuralfuse.models``.
:func:`register_all` is the ``sramsim.models`` entry point declared in setup.cfg; sramsim calls it
with its own ``register`` function, so sramsim can count weight accesses of our networks without
ever importing neuralfuse.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, TypeVar

from torch import nn

Factory = TypeVar("Factory", bound=Callable[..., nn.Module])


class Registry:
    """Factories by name; lookups ignore case, listings keep each name's registered spelling.

    >>> BLOCKS = Registry("block")
    >>> @BLOCKS.register("Tiny")
    ... def tiny() -> nn.Module:
    ...     return nn.Identity()
    >>> BLOCKS.names(), type(BLOCKS.create("tiny")).__name__
    (['Tiny'], 'Identity')
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, tuple[str, Callable[..., nn.Module]]] = {}

    def register(self, name: str) -> Callable[[Factory], Factory]:
        """Decorator that registers a class or function under ``name`` and returns it unchanged."""

        def add(factory: Factory) -> Factory:
            key = name.casefold()
            if key in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[key] = (name, factory)
            return factory

        return add

    def names(self) -> list[str]:
        """Registered names, sorted case-insensitively."""
        return sorted((name for name, _ in self._entries.values()), key=str.casefold)

    def create(self, name: str, **kwargs) -> nn.Module:
        """Build the network registered as ``name`` (any case) with ``kwargs``."""
        entry = self._entries.get(name.casefold()) if isinstance(name, str) else None
        if entry is None:
            raise ValueError(f"unknown {self.kind} {name!r}: choose one of {', '.join(self.names())}")
        return entry[1](**kwargs)


def register_all(register: Callable[[str, Callable[..., nn.Module], str], None]) -> None:
    """Entry point ``sramsim.models``: call ``register(name, factory, kind)`` for each network.

    Base models come with kind ``"model"`` and ``factory(num_classes=10, width=1.0)``; generators
    with kind ``"generator"`` and ``factory(**kwargs)``. The UIP baseline is left out: it is a
    tensor added to the input, with no weights streamed through an accelerator.
    """
    # Imported here, not at the top: both packages import Registry from this module.
    from neuralfuse.generators import create_generator, list_generators
    from neuralfuse.models import create_model, list_models

    for name in list_models():
        register(name, partial(create_model, name), "model")
    for name in list_generators():
        if name != "UIP":
            register(name, partial(create_generator, name), "generator")
