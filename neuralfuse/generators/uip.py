"""The universal input perturbation (UIP) baseline: G(x) = tanh(U), one trainable U for all inputs."""
from __future__ import annotations

import numbers
from typing import Sequence

import torch
from torch import nn

from neuralfuse.generators.registry import InputTransform, register_generator


class TanhPerturbation(nn.Module):
    """G(x) = tanh(U) with U a trainable tensor of one input's shape, initialised to zero (F = identity)."""

    def __init__(self, input_shape: Sequence[int]) -> None:
        super().__init__()
        self.perturbation = nn.Parameter(torch.zeros(tuple(input_shape)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.perturbation).expand_as(x)


@register_generator("UIP", needs=("input_shape",), stores_weights=False)
class UIP(InputTransform):
    """Universal input perturbation for inputs of shape ``input_shape`` (channels, height, width).

    >>> uip = UIP(input_shape=(3, 32, 32))
    >>> sum(p.numel() for p in uip.parameters())
    3072
    """

    def __init__(self, input_shape: Sequence[int]) -> None:
        shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
        if len(shape) != 3 or not all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in shape
        ):
            raise ValueError(
                f"input_shape={input_shape!r} is not valid: use (channels, height, width) as positive ints"
            )
        shape = tuple(int(n) for n in shape)
        super().__init__(TanhPerturbation(shape))
        self.input_shape = shape

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError unless ``x`` is a batch of inputs of shape ``input_shape``."""
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(
                f"UIP got input of shape {tuple(x.shape)}: expected (batch, *{self.input_shape})"
            )

    def extra_repr(self) -> str:
        return f"input_shape={self.input_shape}"
