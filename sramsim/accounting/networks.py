"""The networks the accounting can name, so the CLI counts accesses of models it does not define.

sramsim defines no networks itself. Packages register theirs through the entry-point group
``sramsim.models``: each entry point is a callable taking the register function, e.g. in
setup.cfg ``neuralfuse = neuralfuse.registry:register_all`` with ::

    def register_all(register):
        register("resnet18", make_resnet18, "model")
        register("ConvL", make_convl, "generator")

``register`` also takes what a network declares about itself (see :class:`sramsim.registry.NetworkInfo`):
``needs=("input_shape",)`` and ``stores_weights``. Entry points are loaded on first lookup.
Names are matched case-insensitively and keep their registered spelling in listings.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from torch import nn

from sramsim.registry import Registry

ENTRY_POINT_GROUP = "sramsim.models"
NETWORK_KINDS = ("model", "generator")
NETWORKS = Registry("network", context=("input_shape",), kinds=NETWORK_KINDS)
_entry_points_loaded = False


def register_network(name: str, factory: Callable[..., nn.Module], kind: str = "model", *,
                     needs: Sequence[str] = (), stores_weights: bool = True) -> None:
    """Register ``factory`` (called with keyword arguments, returns an nn.Module) as ``name``.

    Registering the same factory again under a name is a no-op; another factory under a taken
    name (in any letter case) is an error.
    """
    NETWORKS.add(name, factory, kind=kind, needs=needs, stores_weights=stores_weights)


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
    _load_entry_points()
    return NETWORKS.names(kind)


def network_kind(name: str) -> str:
    """"model" or "generator" for a registered name."""
    _load_entry_points()
    return NETWORKS.info(name).kind


def create_network(name: str, **kwargs) -> nn.Module:
    """Build the registered network ``name`` (any letter case), passing ``kwargs`` to its factory.

    ``input_shape`` may always be given; it reaches only networks that need it. Unknown names
    raise an UnknownNetworkError (a KeyError and a ValueError) listing the known ones.
    """
    _load_entry_points()
    return NETWORKS.create(name, **kwargs)
