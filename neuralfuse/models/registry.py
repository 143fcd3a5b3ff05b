"""The base-model registry and the width multiplier shared by every family."""
from __future__ import annotations

import math

from torch import nn

from characterization.validation import check_scalar
from sramsim.registry import Registry

MODELS = Registry("model")
register_model = MODELS.register


def create_model(name: str, num_classes: int = 10, width: float = 1.0, norm: str = "batch") -> nn.Module:
    """Build base model ``name`` (case-insensitive), e.g. ``create_model("resnet18", width=0.25)``.

    ``width`` scales every layer's channels (rounded, at least 1); 1.0 is the standard network.
    ``norm`` is "batch" (BatchNorm, the paper's models) or "group" (GroupNorm, see
    :mod:`neuralfuse.models.norm`). Unknown names or norms, non-positive widths or class counts
    raise a ValueError naming the value.
    """
    return MODELS.create(name, num_classes=num_classes, width=width, norm=norm)


def list_models() -> list[str]:
    """Names of the registered base models, e.g. ``['resnet18', 'resnet50', 'vgg11', ...]``."""
    return MODELS.names()


def check_width(width: float) -> float:
    """Return ``width`` if it is a positive finite number, else raise a ValueError naming it."""
    check_scalar(width, "width", float, min_val=0, max_val=math.inf, include_boundaries="neither",
                 allowed="a positive finite number (1.0 = standard)")
    return float(width)


def check_num_classes(num_classes: int) -> int:
    """Return ``num_classes`` if it is a positive int, else raise a ValueError naming it."""
    return int(check_scalar(num_classes, "num_classes", int, min_val=1))


def scaled(channels: int, width: float) -> int:
    """``channels`` scaled by ``width``, rounded to the nearest integer, at least 1."""
    return max(1, round(channels * width))
