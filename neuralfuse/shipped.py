"""The setups shipped in ``neuralfuse/assets/`` for ``neuralfuse demo``: base model, generator, budget.

Kept apart from :mod:`neuralfuse.demo` so that the command line can list them without importing torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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

    @property
    def base(self) -> Path:
        return self.folder / "base.pt"

    @property
    def generator_run(self) -> Path:
        return self.folder / "generator"


# vgg11: 10 chips x 1,000 images is at or near the best split of the evaluation budget for this
# model's measured chip-to-chip spread (reference/vgg11/README.md, "Chips or images"); 13 voltages
# of it run in about 6 minutes on 2 cores.
SETUPS = {setup.name: setup for setup in (
    DemoSetup("vgg11", ASSETS / "vgg11", "VGG11, full width (9.2M weights), CIFAR-10",
              voltages="0.76,0.77,0.78,0.79,0.80,0.81,0.82,0.83,0.84,0.86,0.90,1.00", chips=10, samples=1000),
    DemoSetup("resnet18-w0.25", ASSETS / "resnet18-w025", "ResNet18, width 0.25 (0.70M weights), "
              "default CIFAR-10 subset", voltages="0.76:1.00:0.02", chips=10, samples=1000),
)}
DEFAULT_SETUP = "vgg11"
