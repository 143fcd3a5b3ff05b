"""Storage formats: how a stored tensor's weights become b-bit codes in memory, and what a code
reads back as (:func:`get`; :data:`STORAGE_FORMATS`). One format per deployment, applied per
stored tensor (each layer's weights, and its biases when stored, separately).

``"symmetric"`` (default; :mod:`sramsim.quant`)
    ``s = max|W| / (2^(b-1) - 1)``, ``q = round(W / s)``, stored as the b-bit two's-complement code
    ``q mod 2^b``; a code reads back as ``q * s``. A faulty sign bit can turn a weight into
    ``-2^(b-1) * s``, far outside the tensor's range.

``"robust"`` (Stutz et al., MLSys 2021, "RQuant")
    The asymmetric range ``[qmin, qmax] = [min W, max W]``, centre ``c = (qmin + qmax) / 2`` and
    ``s = (qmax - qmin) / 2 / (2^(b-1) - 1)``; ``q = round((W - c) / s)`` in
    ``[-(2^(b-1) - 1), 2^(b-1) - 1]``, stored as the *unsigned* code ``q + 2^(b-1)``. A code reads
    back as ``c + (code - 2^(b-1)) * s`` clamped into ``[qmin, qmax]``, so no fault can move a
    weight out of its tensor's range. The endpoints read back exactly (``min W`` and ``max W``).

Both formats hand the deployment's kernels the same thing, signed integers ``q`` and a value
``offset + q * scale`` (:class:`QuantParams`): the robust code is the two's-complement code with
its top bit inverted (``code_xor``), and its only code off the grid, 0 (``q = -2^(b-1)``), reads
as ``qmin``, the value of ``q = -(2^(b-1) - 1)``: on the integers the clamp is
:meth:`StorageFormat.clamp_integers`.

    >>> w = torch.tensor([-0.5, 0.0, 0.25, 1.0])
    >>> codes, params = get("robust").quantize(w, bits=4)
    >>> codes.tolist()
    [1, 6, 8, 15]
    >>> get("robust").decode(torch.tensor([0, 15], dtype=torch.uint8), params, bits=4).tolist()
    [-0.5, 1.0]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sramsim import quant

DEFAULT_STORAGE = "symmetric"


@dataclass(frozen=True)
class QuantParams:
    """One tensor's quantization: a signed integer ``q`` reads as ``offset + q * scale`` (in
    float64, then rounded to the tensor's dtype), clamped into ``[low, high]`` where given."""

    scale: float
    offset: float = 0.0
    low: float | None = None
    high: float | None = None


class StorageFormat:
    """A storage format (see the module docstring); subclasses give :meth:`integers`."""

    name: str
    semantics: str
    clamps: bool = False   # whether a read clamps into the tensor's range

    def integers(self, weight: torch.Tensor, bits: int) -> tuple[torch.Tensor, QuantParams]:
        """Signed integer levels of ``weight`` (int8, in [-(2^(b-1)-1), 2^(b-1)-1]) and its params."""
        raise NotImplementedError

    def code_xor(self, bits: int) -> int:
        """The bits in which a stored code differs from the two's-complement code of its integer."""
        return 0

    def clamp_integers(self, values: np.ndarray, bits: int) -> None:
        """Clamp, in place, integers read from faulty codes (int8) to those that read the same value."""

    def quantize(self, weight: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, QuantParams]:
        """The b-bit codes (uint8) that store ``weight``, and the params to read them."""
        q, params = self.integers(weight, bits)
        return quant.to_codes(q, bits) ^ self.code_xor(bits), params

    def dequantize(self, q: torch.Tensor, params: QuantParams, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Values of signed integers ``q`` (any integer dtype), as the deployment writes them."""
        value = (q.to(torch.float64) * params.scale + params.offset).to(dtype)
        if params.low is not None:
            value = value.clamp_(params.low, params.high)
        return value

    def decode(self, codes: torch.Tensor, params: QuantParams, bits: int = 8,
               dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Values of stored b-bit ``codes`` (uint8), any of the 2^b codes (a faulty one too)."""
        mask = 2 ** quant.check_bits(bits) - 1
        return self.dequantize(quant.from_codes((codes & mask) ^ self.code_xor(bits), bits), params, dtype)

    def fake_quantize(self, weight: torch.Tensor, bits: int = 8) -> torch.Tensor:
        """Quantize-dequantize with a straight-through estimator (identity gradient), for QAT."""
        q, params = self.integers(weight, bits)
        return weight + (self.dequantize(q, params, weight.dtype) - weight).detach()

    def __repr__(self) -> str:
        return f"<storage format {self.name!r}>"


class Symmetric(StorageFormat):
    name = "symmetric"
    semantics = ("per tensor s = max|W| / (2^(b-1)-1), q = round(W/s) stored as b-bit two's "
                 "complement, read as q*s (a faulty sign bit can leave the tensor's range)")

    def integers(self, weight: torch.Tensor, bits: int) -> tuple[torch.Tensor, QuantParams]:
        q, scale = quant.quantize(weight, bits)
        return q, QuantParams(float(scale))

    def fake_quantize(self, weight: torch.Tensor, bits: int = 8) -> torch.Tensor:
        return quant.fake_quantize(weight, bits)


class Robust(StorageFormat):
    name = "robust"
    semantics = ("per tensor range [min W, max W], q = round((W - centre)/s) stored as unsigned "
                 "b-bit code q + 2^(b-1), read back clamped into the range (Stutz et al., RQuant)")
    clamps = True

    def integers(self, weight: torch.Tensor, bits: int) -> tuple[torch.Tensor, QuantParams]:
        m = quant.qmax(bits)
        w = weight.detach()
        low, high = float(w.min()), float(w.max())
        centre = (low + high) / 2
        scale = (high - low) / 2 / m if high > low else 1.0
        q = torch.round((w.to(torch.float64) - centre) / scale).clamp_(-m, m).to(torch.int8)
        return q, QuantParams(scale, centre, low, high)

    def code_xor(self, bits: int) -> int:
        return 2 ** (quant.check_bits(bits) - 1)

    def clamp_integers(self, values: np.ndarray, bits: int) -> None:
        np.maximum(values, -quant.qmax(bits), out=values)


_FORMATS: dict[str, StorageFormat] = {f.name: f for f in (Symmetric(), Robust())}
#: The registered formats' names, the default first.
STORAGE_FORMATS = tuple(_FORMATS)


def get(name: str) -> StorageFormat:
    """The storage format ``name``, else a ValueError listing the known ones."""
    if name not in _FORMATS:
        raise ValueError(f"unknown storage format {name!r}: use one of {', '.join(STORAGE_FORMATS)}")
    return _FORMATS[name]
