"""Normalization layers of the base models: BatchNorm (default) or GroupNorm with a scale 1 + a'.

    norm_layer("batch", 64)    # nn.BatchNorm2d(64)
    norm_layer("group", 64)    # OffsetGroupNorm: 32 groups of 2 channels, scale 1 + weight

GroupNorm follows Stutz et al. (MLSys 2021), who found networks with it far more robust to weight
bit errors than with BatchNorm: its scale is reparametrised as ``1 + a'`` with ``a'`` the stored
parameter (initialised to 0), so weight decay and clipping pull the scale towards 1, not 0.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("batch", "group")
#: GroupNorm's group count (Wu & He's default): every full-width layer (64-512 channels) gets 32.
MAX_GROUPS = 32


class OffsetGroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` whose per-channel scale is ``1 + weight`` (``weight`` starts at 0)."""

    def reset_parameters(self) -> None:
        if self.affine:
            nn.init.zeros_(self.weight)
            nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = 1 + self.weight if self.affine else None
        return F.group_norm(x, self.num_groups, scale, self.bias, self.eps)


def group_count(channels: int) -> int:
    """Groups for ``channels``: the largest divisor of both ``channels`` and 32.

    32 groups at every full-width layer (a multiple of 32 channels); narrower models, e.g. width
    1/16 with 4 channels, get fewer groups, and an odd channel count a single group.
    """
    return math.gcd(MAX_GROUPS, channels)


def check_norm(norm: str) -> str:
    """Return ``norm`` if it is one of :data:`NORMS`, else raise a ValueError naming it."""
    if norm not in NORMS:
        raise ValueError(f"norm={norm!r} is unknown: choose one of {', '.join(NORMS)}")
    return norm


def norm_layer(norm: str, channels: int) -> nn.Module:
    """The 2-D normalization layer ``norm`` ("batch" or "group") over ``channels`` channels."""
    if check_norm(norm) == "batch":
        return nn.BatchNorm2d(channels)
    return OffsetGroupNorm(group_count(channels), channels)
