"""DeConvL and DeConvS: the Conv family's encoders with a transposed-convolution decoder."""
from __future__ import annotations

from torch import nn

from neuralfuse.generators.blocks import (
    IMAGE_CHANNELS, conv_block, deconv_block, large_encoder, small_encoder, tanh_head,
)
from neuralfuse.generators.registry import InputTransform, register_generator


def deconv_head(c_in: int) -> nn.Sequential:
    """Last ×2 upsampling: 4×4 transposed conv (stride 2, padding 1) to 3 channels + BN + Tanh."""
    return tanh_head(nn.ConvTranspose2d(c_in, IMAGE_CHANNELS, 4, stride=2, padding=1))


@register_generator("DeConvL")
class DeConvL(InputTransform):
    """Large encoder; ConvBlock 128; [DeConvBlock, ConvBlock] at 64 and 32 channels; DeConv + BN +
    Tanh to 3 channels. 647,785 parameters."""

    def __init__(self) -> None:
        layers = large_encoder()
        layers.append(conv_block(128, 128))
        for c_in, c_out in ((128, 64), (64, 32)):
            layers += [deconv_block(c_in, c_out), conv_block(c_out, c_out)]
        layers.append(deconv_head(32))
        super().__init__(nn.Sequential(*layers))


@register_generator("DeConvS")
class DeConvS(InputTransform):
    """Small encoder; DeConvBlock 64; DeConvBlock 32; DeConv + BN + Tanh to 3 channels.
    156,777 parameters."""

    def __init__(self) -> None:
        layers = small_encoder() + [deconv_block(64, 64), deconv_block(64, 32), deconv_head(32)]
        super().__init__(nn.Sequential(*layers))
