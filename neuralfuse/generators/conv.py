"""ConvL and ConvS: conv encoder, nearest-neighbour upsampling decoder, tanh output."""
from __future__ import annotations

from torch import nn

from neuralfuse.generators.blocks import IMAGE_CHANNELS, conv_block, large_encoder, small_encoder, tanh_head
from neuralfuse.generators.registry import InputTransform, register_generator


def upsample() -> nn.Upsample:
    """Parameter-free ×2 nearest-neighbour upsampling."""
    return nn.Upsample(scale_factor=2, mode="nearest")


@register_generator("ConvL")
class ConvL(InputTransform):
    """Large encoder; [ConvBlock, UpSample, ConvBlock] at 128, 64, 32 channels; Conv + BN + Tanh
    to 3 channels. 723,273 parameters."""

    def __init__(self) -> None:
        layers = large_encoder()
        for c_in, c_out in ((128, 128), (128, 64), (64, 32)):
            layers += [conv_block(c_in, c_out), upsample(), conv_block(c_out, c_out)]
        layers.append(tanh_head(nn.Conv2d(32, IMAGE_CHANNELS, 3, padding=1)))
        super().__init__(nn.Sequential(*layers))


@register_generator("ConvS")
class ConvS(InputTransform):
    """Small encoder; [ConvBlock, UpSample] at 64, 32, 3 channels; Conv + BN + Tanh at 3 channels.
    113,187 parameters."""

    def __init__(self) -> None:
        layers = small_encoder()
        for c_in, c_out in ((64, 64), (64, 32), (32, IMAGE_CHANNELS)):
            layers += [conv_block(c_in, c_out), upsample()]
        layers.append(tanh_head(nn.Conv2d(IMAGE_CHANNELS, IMAGE_CHANNELS, 3, padding=1)))
        super().__init__(nn.Sequential(*layers))
