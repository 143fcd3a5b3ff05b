"""The generator registry and the module every generator is: F(x) = clamp(x + G(x), -1, 1)."""
from __future__ import annotations

import torch
from torch import nn

from sramsim.registry import Registry

GENERATORS = Registry("generator", context=("input_shape",))
register_generator = GENERATORS.register


def create_generator(name: str, **kwargs) -> nn.Module:
    """Build the generator ``name`` (case-insensitive), e.g. ``create_generator("UNetL")``.

    ``input_shape`` (channels, height, width) may always be given; it reaches only the
    generators that declare they need it (UIP: ``create_generator("UIP", input_shape=(3, 32, 32))``).
    Unknown names raise a ValueError listing the known ones.
    """
    return GENERATORS.create(name, **kwargs)


def list_generators() -> list[str]:
    """Names of the registered generators, e.g. ``['ConvL', 'ConvS', ...]``."""
    return GENERATORS.names()


class InputTransform(nn.Module):
    """NeuralFuse's input transformation F(x) = clamp(x + G(x), -1, 1), Eq. (1); G is ``self.net``.

    Inputs are (batch, channels, height, width) in [-1, 1]. The encoder-decoder generators pool
    three times, so height and width must be multiples of ``size_multiple``.
    """

    size_multiple = 8

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError naming the shape of ``x`` unless G can transform it."""
        m = self.size_multiple
        if x.dim() != 4 or x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(
                f"{type(self).__name__} got input of shape {tuple(x.shape)}: "
                f"expected (batch, channels, height, width) with height and width multiples of {m}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        return torch.clamp(x + self.net(x), -1.0, 1.0)
