"""Per-tensor symmetric b-bit weight quantization and two's-complement codes.

The one quantizer of the toolkit: sramsim deploys with it and neuralfuse's quantization-aware
training fakes it, so a QAT-trained model deploys without a second rounding.

    s  = max|W| / (2^(b-1) - 1)
    Wq = round(W / s)               (signed, in [-(2^(b-1)-1), 2^(b-1)-1])
    W' = Wq * s

A b-bit weight is stored in memory as its b-bit two's-complement code, ``Wq mod 2^b``.
"""
from __future__ import annotations

import torch

from characterization.validation import check_scalar

MIN_BITS, MAX_BITS = 2, 8


def check_bits(bits: int) -> int:
    """Return ``bits`` if it is an integer in [2, 8], else raise a ValueError naming it."""
    return check_scalar(bits, "bits", int, min_val=MIN_BITS, max_val=MAX_BITS,
                        allowed=f"an integer from {MIN_BITS} to {MAX_BITS}")


def qmax(bits: int) -> int:
    """Largest quantized magnitude, 2^(b-1) - 1."""
    return 2 ** (check_bits(bits) - 1) - 1


def scale_of(weight: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Per-tensor scale s = max|W| / (2^(b-1)-1) as a 0-dim tensor (1.0 for an all-zero tensor)."""
    peak = weight.detach().abs().max()
    return torch.where(peak > 0, peak / qmax(bits), torch.ones_like(peak))


def quantize(weight: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize ``weight``; return (int8 tensor Wq, 0-dim float scale s) with W ≈ Wq * s."""
    s = scale_of(weight, bits)
    m = qmax(bits)
    q = torch.round(weight.detach() / s).clamp_(-m, m).to(torch.int8)
    return q, s


def dequantize(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Map integer weights back to real values, Wq * s."""
    return q.to(dtype) * scale.to(dtype)


def fake_quantize(weight: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Quantize-dequantize with a straight-through estimator (identity gradient), for QAT."""
    q, s = quantize(weight, bits)
    return weight + (dequantize(q, s, weight.dtype) - weight).detach()


def to_codes(q: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Two's-complement b-bit codes of integer weights, as uint8 (bit i of a code is bit i stored)."""
    return (q.to(torch.int16) & (2 ** check_bits(bits) - 1)).to(torch.uint8)


def from_codes(codes: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Inverse of :func:`to_codes`: signed int8 values of b-bit two's-complement codes."""
    c = codes.to(torch.int16) & (2 ** check_bits(bits) - 1)
    return torch.where(c >= 2 ** (bits - 1), c - 2 ** bits, c).to(torch.int8)
