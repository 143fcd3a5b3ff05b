"""Small stand-ins shared by the sweep tests (local and on Ray): a base model and a generator."""
from __future__ import annotations

import torch
from torch import nn

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


class Shift(nn.Module):
    """A stand-in generator with weights: F(x) = clamp(x + conv(x), -1, 1)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.net = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x + 0.1 * self.net(x), -1, 1)
