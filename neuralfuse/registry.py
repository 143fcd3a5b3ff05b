"""The ``sramsim.models`` entry point: hands neuralfuse's networks to sramsim's registry.

Declared in setup.cfg; sramsim calls :func:`register_all` with its own ``register`` function, so
sramsim can count weight accesses of our networks without ever importing neuralfuse.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

from neuralfuse.generators.registry import GENERATORS
from neuralfuse.models.registry import MODELS


def register_all(register: Callable[..., None]) -> None:
    """Call ``register(name, factory, kind)`` for each network that stores weights.

    Base models come with kind ``"model"`` and ``factory(num_classes=10, width=1.0)``; generators
    with kind ``"generator"`` and ``factory(**kwargs)``; a network that needs context arguments
    also passes ``needs=``. Networks that store no weights in the accelerator's memory (the UIP
    baseline: a tensor added to the input) are left out.
    """
    for registry, kind in ((MODELS, "model"), (GENERATORS, "generator")):
        for name in registry.names():
            info = registry.info(name)
            if info.stores_weights:
                needs = {"needs": info.needs} if info.needs else {}
                register(name, partial(registry.create, name), kind, **needs)
