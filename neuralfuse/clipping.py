"""Weight clipping (Stutz et al., MLSys 2021): keep every stored weight within [-wmax, wmax].

    optimizer.step()
    clip_stored_weights(model, 0.1)

The clipped tensors are the ones the faulty weight memory holds (conv and linear weights, see
:func:`neuralfuse.qat.quantized_layers`); under quantization-aware training the float tensor
behind the fake-quantizer is clipped, so the quantized weight (whose scale is the tensor's
largest magnitude) stays within the bound too.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from characterization.validation import check_scalar
from neuralfuse.qat import quantized_layers


def check_clip(wmax: float) -> float:
    """Return ``wmax`` as a float if it is a positive finite number, else raise a ValueError."""
    check_scalar(wmax, "clip", float, min_val=0, max_val=math.inf, include_boundaries="neither",
                 allowed="a positive number (the largest weight magnitude, e.g. 0.1)")
    return float(wmax)


@torch.no_grad()
def clip_stored_weights(model: nn.Module, wmax: float) -> None:
    """Clamp, in place, every conv/linear weight of ``model`` (QAT or plain) to [-wmax, wmax]."""
    wmax = check_clip(wmax)
    for _, layer in quantized_layers(model):
        if parametrize.is_parametrized(layer, "weight"):
            layer.parametrizations.weight.original.clamp_(-wmax, wmax)
        else:
            layer.weight.clamp_(-wmax, wmax)
