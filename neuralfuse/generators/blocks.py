"""Layers shared by the generator families of the NeuralFuse paper (Sun et al., NeurIPS 2024)."""
from __future__ import annotations

from typing import Sequence

from torch import nn

IMAGE_CHANNELS = 3


def conv_block(c_in: int, c_out: int, *, bias: bool = True) -> nn.Sequential:
    """ConvBlock: 3×3 conv (stride 1, padding 1) + BatchNorm + ReLU; keeps the spatial size."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=bias), nn.BatchNorm2d(c_out), nn.ReLU()
    )


def deconv_block(c_in: int, c_out: int) -> nn.Sequential:
    """DeConvBlock: 4×4 transposed conv (stride 2, padding 1) + BatchNorm + ReLU; doubles the size."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()
    )


def tanh_head(layer: nn.Module) -> nn.Sequential:
    """The last stage of the Conv/DeConv families: ``layer`` (to 3 channels) + BatchNorm + Tanh."""
    return nn.Sequential(layer, nn.BatchNorm2d(IMAGE_CHANNELS), nn.Tanh())


def encoder(widths: Sequence[int], convs_per_stage: int) -> list[nn.Module]:
    """Per width, ConvBlock×``convs_per_stage`` then a 2×2 max-pool; starts from 3 channels."""
    layers: list[nn.Module] = []
    c_in = IMAGE_CHANNELS
    for width in widths:
        for _ in range(convs_per_stage):
            layers.append(conv_block(c_in, width))
            c_in = width
        layers.append(nn.MaxPool2d(2))
    return layers


def large_encoder() -> list[nn.Module]:
    """ConvL/DeConvL encoder: [ConvBlock×2, MaxPool] at 32, 64, 128 channels; ends at 128."""
    return encoder((32, 64, 128), convs_per_stage=2)


def small_encoder() -> list[nn.Module]:
    """ConvS/DeConvS encoder: [ConvBlock, MaxPool] at 32, 64, 64 channels; ends at 64."""
    return encoder((32, 64, 64), convs_per_stage=1)
