"""Small stand-ins shared by the tests: base models, a checkpoint, a generator and the sweep
command line."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

from neuralfuse.checkpoint import save_checkpoint
from neuralfuse.models import create_model


def tiny_model() -> nn.Module:
    """A randomly initialised ResNet18 of width 1/16 whose BatchNorm statistics are set from data,
    so its predictions spread over several classes."""
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=10, width=1 / 16)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # cumulative average over the calibration pass
    with torch.no_grad():
        model.train()(torch.rand(128, 3, 8, 8) * 2 - 1)
    return model.eval()


def fitted_model(width: float, images: int, steps: int, classes: int = 4) -> tuple[nn.Module, TensorDataset]:
    """A ResNet18 at ``width`` fitted with ``steps`` Adam steps to ``images`` random 8x8 images in
    ``classes`` classes (so its decisions have margins and faults change them), in eval mode, and
    those images."""
    torch.manual_seed(0)
    x = torch.rand(images, 3, 8, 8) * 2 - 1
    y = torch.randint(0, classes, (images,))
    model = create_model("resnet18", num_classes=classes, width=width)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model.eval(), TensorDataset(x, y)


class Shift(nn.Module):
    """A stand-in generator with weights: F(x) = clamp(x + conv(x), -1, 1)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x + 0.1 * self.net(x), -1, 1)


def save_tiny_checkpoint(path: Path) -> Path:
    """:func:`tiny_model` saved as a base-model checkpoint at ``path``."""
    return save_checkpoint(path, tiny_model(), arch="resnet18", width=1 / 16, num_classes=10, bits=8)


def sweep_args(checkpoint: Path, out: Path, *extra: str) -> list[str]:
    """``neuralfuse sweep`` arguments for a 2-voltage, 2-chip, 40-image sweep of ``checkpoint``."""
    return ["sweep", "--base", str(checkpoint), "--voltages", "0.9:1.0:0.1", "--chips", "2",
            "--samples", "40", "--no-progress", "-o", str(out), *extra]
