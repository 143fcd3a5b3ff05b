"""UNetL and UNetS: four-level U-Nets with skip concatenation and a 1×1 output conv (no tanh)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from neuralfuse.generators.blocks import IMAGE_CHANNELS, conv_block
from neuralfuse.generators.registry import InputTransform, register_generator


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    """ConvBlock×2; the 3×3 convs have no bias (BatchNorm follows each)."""
    return nn.Sequential(conv_block(c_in, c_out, bias=False), conv_block(c_out, c_out, bias=False))


def up_conv(c_in: int) -> nn.ConvTranspose2d:
    """2×2 stride-2 transposed conv halving the channels before the skip concatenation.

    Padding 0, chosen deliberately: the output is exactly 2n pixels, the skip's size. The paper
    lists padding 1, which gives 2n - 2 and forces zero-padding up to the skip; the parameter count
    is the same either way.
    """
    return nn.ConvTranspose2d(c_in, c_in // 2, 2, stride=2, padding=0)


class UNet(nn.Module):
    """The raw U-Net G: ``widths`` channels per level, max-pool down, up_conv + concat + double_conv up."""

    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        c_ins = (IMAGE_CHANNELS, *widths[:-2])
        self.down = nn.ModuleList(double_conv(c_in, c_out) for c_in, c_out in zip(c_ins, widths[:-1]))
        self.bottom = double_conv(widths[-2], widths[-1])
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(up_conv(c) for c in reversed(widths[1:]))
        self.merge = nn.ModuleList(double_conv(c, c // 2) for c in reversed(widths[1:]))
        self.head = nn.Conv2d(widths[0], IMAGE_CHANNELS, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level in self.down:
            x = level(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)


@register_generator("UNetL")
class UNetL(InputTransform):
    """U-Net at 16/32/64/128 channels. 482,771 parameters."""

    def __init__(self) -> None:
        super().__init__(UNet((16, 32, 64, 128)))


@register_generator("UNetS")
class UNetS(InputTransform):
    """U-Net at 8/16/32/64 channels. 121,195 parameters."""

    def __init__(self) -> None:
        super().__init__(UNet((8, 16, 32, 64)))
