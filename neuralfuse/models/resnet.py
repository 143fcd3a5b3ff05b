"""CIFAR ResNets (3×3 stem conv, no max-pool, global average pool, one linear head), with BatchNorm
or GroupNorm (:mod:`neuralfuse.models.norm`)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from neuralfuse.models.norm import check_norm, norm_layer
from neuralfuse.models.registry import check_num_classes, check_width, register_model, scaled


def conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1, norm: str = "batch") -> list[nn.Module]:
    """Bias-free conv ('same' padding for odd kernels) followed by normalization ``norm``."""
    return [nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False), norm_layer(norm, c_out)]


def shortcut(c_in: int, c_out: int, stride: int, norm: str = "batch") -> nn.Module:
    """Identity when shapes match, else a 1×1 projection conv + normalization."""
    if stride == 1 and c_in == c_out:
        return nn.Identity()
    return nn.Sequential(*conv_bn(c_in, c_out, 1, stride, norm))


class BasicBlock(nn.Module):
    """Two 3×3 convs with a residual connection (ResNet18/34)."""

    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int, norm: str = "batch") -> None:
        super().__init__()
        self.residual = nn.Sequential(
            *conv_bn(c_in, planes, 3, stride, norm), nn.ReLU(), *conv_bn(planes, planes, 3, norm=norm)
        )
        self.shortcut = shortcut(c_in, planes, stride, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.residual(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1×1 reduce, 3×3, 1×1 expand (×4) with a residual connection (ResNet50 and deeper)."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int, norm: str = "batch") -> None:
        super().__init__()
        c_out = planes * self.expansion
        self.residual = nn.Sequential(
            *conv_bn(c_in, planes, 1, norm=norm), nn.ReLU(),
            *conv_bn(planes, planes, 3, stride, norm), nn.ReLU(),
            *conv_bn(planes, c_out, 1, norm=norm),
        )
        self.shortcut = shortcut(c_in, c_out, stride, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.residual(x) + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet: four stages of ``blocks_per_stage`` blocks at 64/128/256/512 planes × width;
    ``norm`` is "batch" (BatchNorm) or "group" (GroupNorm)."""

    def __init__(
        self, block: type[BasicBlock | Bottleneck], blocks_per_stage: Sequence[int],
        num_classes: int = 10, width: float = 1.0, norm: str = "batch",
    ) -> None:
        super().__init__()
        num_classes = check_num_classes(num_classes)
        width = check_width(width)
        norm = check_norm(norm)
        c_in = scaled(64, width)
        self.stem = nn.Sequential(*conv_bn(3, c_in, 3, norm=norm), nn.ReLU())
        stages = []
        for stage, n_blocks in enumerate(blocks_per_stage):
            planes = scaled(64 * 2**stage, width)
            blocks = []
            for i in range(n_blocks):
                blocks.append(block(c_in, planes, stride=2 if stage > 0 and i == 0 else 1, norm=norm))
                c_in = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


@register_model("resnet18")
def resnet18(num_classes: int = 10, width: float = 1.0, norm: str = "batch") -> ResNet:
    """CIFAR ResNet18: 11,173,962 parameters at width 1 and 10 classes."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, width, norm)


@register_model("resnet50")
def resnet50(num_classes: int = 10, width: float = 1.0, norm: str = "batch") -> ResNet:
    """CIFAR ResNet50: 23,520,842 parameters at width 1 and 10 classes."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, width, norm)
