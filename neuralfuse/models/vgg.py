"""CIFAR VGGs with BatchNorm (or GroupNorm): 3×3 convs (with bias), five max-pools, global pooling,
one Linear."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from neuralfuse.models.norm import check_norm, norm_layer
from neuralfuse.models.registry import check_num_classes, check_width, register_model, scaled

POOL = "M"
CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL),
    "vgg16": (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512, 512, POOL),
    "vgg19": (64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL,
              512, 512, 512, 512, POOL, 512, 512, 512, 512, POOL),
}


class VGG(nn.Module):
    """VGG from a layer list: channel counts (× width) for Conv + norm + ReLU, ``"M"`` for a 2×2
    max-pool; ``norm`` is "batch" (BatchNorm) or "group" (:mod:`neuralfuse.models.norm`).

    At 32×32 the last feature map is 1×1; the adaptive average pool lets other input sizes through.
    """

    def __init__(self, config: Sequence[int | str], num_classes: int = 10, width: float = 1.0,
                 norm: str = "batch") -> None:
        super().__init__()
        num_classes = check_num_classes(num_classes)
        width = check_width(width)
        norm = check_norm(norm)
        layers: list[nn.Module] = []
        c_in = 3
        for item in config:
            if item == POOL:
                layers.append(nn.MaxPool2d(2))
            else:
                c_out = scaled(item, width)
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1), norm_layer(norm, c_out), nn.ReLU()]
                c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


@register_model("vgg11")
def vgg11(num_classes: int = 10, width: float = 1.0, norm: str = "batch") -> VGG:
    """CIFAR VGG11 with BatchNorm: 9,231,114 parameters at width 1 and 10 classes."""
    return VGG(CONFIGS["vgg11"], num_classes, width, norm)


@register_model("vgg16")
def vgg16(num_classes: int = 10, width: float = 1.0, norm: str = "batch") -> VGG:
    """CIFAR VGG16 with BatchNorm: 14,728,266 parameters at width 1 and 10 classes."""
    return VGG(CONFIGS["vgg16"], num_classes, width, norm)


@register_model("vgg19")
def vgg19(num_classes: int = 10, width: float = 1.0, norm: str = "batch") -> VGG:
    """CIFAR VGG19 with BatchNorm: 20,040,522 parameters at width 1 and 10 classes."""
    return VGG(CONFIGS["vgg19"], num_classes, width, norm)
