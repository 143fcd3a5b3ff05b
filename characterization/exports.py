"""Package namespaces that load on first use (PEP 562), for ``sramsim`` and ``neuralfuse``.

A package lists, per module, the public names it re-exports; importing the package then costs
nothing until a name is used, so a light submodule (an entry point, a registry) stays light.
It lives in this package, which the other two depend on, because it needs only the standard
library.

    >>> __all__, __getattr__, __dir__ = lazy_exports("pkg", {"math": ("pi",)})
    >>> __all__, round(__getattr__("pi"), 2)
    (['pi'], 3.14)
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import Any


def lazy_exports(package: str, homes: Mapping[str, Sequence[str]]
                 ) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package`` re-exporting ``homes`` (module -> names).

    A name is imported from its module on first access and then kept in the package's namespace.
    """
    where = {name: module for module, names in homes.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(where[name]), name)
        namespace = sys.modules.get(package)
        if namespace is not None:
            setattr(namespace, name, value)
        return value

    def __dir__() -> list[str]:
        namespace = sys.modules.get(package)
        return sorted({*(vars(namespace) if namespace else ()), *where})

    return sorted(where), __getattr__, __dir__
