"""The setups shipped in ``neuralfuse/assets/`` for ``neuralfuse demo``: base model, generator, budget.

The public way to the shipped models, wherever the package is installed::

    neuralfuse.shipped.names()                                # ['vgg11', 'resnet18-w0.25']
    model, meta = neuralfuse.shipped.load("vgg11")            # the base model
    generator, trained = neuralfuse.shipped.load_generator("vgg11", base=model)

Kept apart from :mod:`neuralfuse.demo`, and torch imported only when a model is loaded, so that the
command line can list the setups without importing torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

ASSETS = Path(__file__).parent / "assets"


@dataclass(frozen=True)
class DemoSetup:
    """A shipped base model, the generator trained for it, and the demo's default evaluation budget."""

    name: str
    folder: Path
    description: str
    voltages: str
    chips: int
    samples: int
    robust: str | None = None   # a file in ``folder``: the same architecture trained to be robust to bit errors
    robust_name: str = ""       # its name in the demo's "which protection" table

    @property
    def base(self) -> Path:
        return self.folder / "base.pt"

    @property
    def robust_base(self) -> Path | None:
        """The shipped robust base model (None: this setup has none)."""
        return None if self.robust is None else self.folder / self.robust

    @property
    def generator_run(self) -> Path:
        return self.folder / "generator"


# vgg11: 10 chips x 1,000 images is at or near the best split of the evaluation budget for this
# model's measured chip-to-chip spread (reference/vgg11/README.md, "Chips or images"); 13 voltages
# of it run in 5.5-9.5 minutes on 2 cores (CPU and hour), the robust model's scan 1-1.5 more.
SETUPS = {setup.name: setup for setup in (
    DemoSetup("vgg11", ASSETS / "vgg11", "VGG11, full width (9.2M weights), CIFAR-10",
              voltages="0.78,0.79,0.80,0.81,0.82,0.83,0.84,0.85,0.86,0.88,0.92,1.00", chips=10, samples=1000,
              robust="robust.pt", robust_name="GN VGG11, clipping 0.1 + RandBET"),
    DemoSetup("resnet18-w0.25", ASSETS / "resnet18-w025", "ResNet18, width 0.25 (0.70M weights), "
              "default CIFAR-10 subset", voltages="0.78:1.00:0.02", chips=10, samples=1000),
)}
DEFAULT_SETUP = "vgg11"


def names() -> list[str]:
    """The names of the shipped setups, the default (:data:`DEFAULT_SETUP`) first."""
    return sorted(SETUPS, key=lambda name: name != DEFAULT_SETUP)


def setup(name: str) -> DemoSetup:
    """The shipped setup called ``name``; a ValueError lists the known names for any other."""
    if name not in SETUPS:
        raise ValueError(f"no shipped setup is called {name!r}: use one of {', '.join(names())}")
    return SETUPS[name]


def load(name: str) -> tuple[nn.Module, dict[str, Any]]:
    """(base model, metadata) of the shipped setup ``name``, as :func:`neuralfuse.load_base_model`
    returns them (in eval mode, on the CPU)."""
    from neuralfuse.checkpoint import load_base_model

    return load_base_model(setup(name).base)


def load_generator(name: str, base: nn.Module | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """(generator, training metadata) of the generator shipped with setup ``name``, as
    :func:`neuralfuse.load_generator` returns them; with ``base`` it checks that the generator was
    trained for that model."""
    from neuralfuse.checkpoint import load_generator as load_run

    return load_run(setup(name).generator_run, base=base)
