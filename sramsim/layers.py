"""Which layers of a torch model the weight memory holds, and running a model without side effects.

    >>> from torch import nn
    >>> model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    >>> [type(m).__name__ for m in model.modules() if isinstance(m, STORED_LAYERS)]
    ['Conv2d', 'Linear']
    >>> with eval_mode(model):
    ...     model[1].training
    False
    >>> model[1].training
    True
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

STORED_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)
"""Layers whose weights live in the accelerator's weight memory: linear and every (transposed)
convolution. Everything else (biases aside, on request) stays off the simulated chip."""


@contextmanager
def eval_mode(*models: nn.Module) -> Iterator[None]:
    """Put ``models`` in eval mode for the block; give every submodule back its own mode after.

    Restores each submodule's flag, not just the top module's, so a model with, say, frozen
    BatchNorm layers inside a training model comes back exactly as it was.
    """
    modes = {m: m.training for model in models for m in model.modules()}
    try:
        for model in models:
            model.eval()
        yield
    finally:
        for module, mode in modes.items():
            module.training = mode
