"""Quantization-aware training (QAT) of base models.

Every convolution, transposed convolution and linear weight is fake-quantized in the forward pass
with :func:`sramsim.quant.fake_quantize` (per-tensor symmetric b-bit, straight-through gradient), the
same quantizer sramsim deploys with. Biases and BatchNorm parameters stay in floating point, as they
are not stored in the faulty weight memory.

    model = create_model("resnet18", width=0.25)
    enable_qat(model, bits=8)        # train as usual; the forward pass sees quantized weights
    export_quantized(model)          # plain weights, each exactly on its quantization grid

After :func:`export_quantized` every weight W satisfies ``dequantize(*quantize(W)) == W`` bit for
bit, so ``sramsim.Deployment`` recovers exactly the integers the model was trained with and the
exported model computes exactly what the QAT model computed.
"""
from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor, nn
from torch.nn.utils import parametrize

from sramsim.layers import STORED_LAYERS
from sramsim.quant import check_bits, fake_quantize


class FakeQuant(nn.Module):
    """Parametrization W ↦ fake_quantize(W, bits): quantized forward, identity gradient."""

    def __init__(self, bits: int = 8) -> None:
        super().__init__()
        self.bits = check_bits(bits)

    def forward(self, weight: Tensor) -> Tensor:
        return fake_quantize(weight, self.bits)

    def extra_repr(self) -> str:
        return f"bits={self.bits}"


def quantized_layers(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Yield (name, module) for every conv, transposed conv and linear layer of ``model``."""
    for name, module in model.named_modules():
        if isinstance(module, STORED_LAYERS):
            yield name, module


def _fake_quant_of(module: nn.Module) -> FakeQuant | None:
    """The FakeQuant parametrization on ``module.weight``, if any."""
    if not parametrize.is_parametrized(module, "weight"):
        return None
    return next((p for p in module.parametrizations["weight"] if isinstance(p, FakeQuant)), None)


def qat_bits(model: nn.Module) -> int | None:
    """Bit width ``model`` is fake-quantized at, or None if QAT is not enabled on it."""
    found = {fq.bits for _, m in quantized_layers(model) if (fq := _fake_quant_of(m)) is not None}
    if len(found) > 1:
        raise ValueError(f"model mixes fake-quantization bit widths {sorted(found)}")
    return found.pop() if found else None


def enable_qat(model: nn.Module, bits: int = 8) -> nn.Module:
    """Fake-quantize every conv/linear weight of ``model`` at ``bits`` bits, in place; return it.

    Create the optimizer after this call: the trainable tensor of each weight moves to
    ``module.parametrizations.weight.original``.

    >>> model = enable_qat(nn.Sequential(nn.Linear(4, 2)), bits=8)
    >>> qat_bits(model)
    8
    """
    check_bits(bits)
    current = qat_bits(model)
    if current is not None:
        raise ValueError(f"QAT is already enabled on this model (bits={current})")
    layers = list(quantized_layers(model))
    if not layers:
        raise ValueError("model has no conv or linear layer to quantize")
    for _, module in layers:
        parametrize.register_parametrization(module, "weight", FakeQuant(bits))
    return model


def export_quantized(model: nn.Module) -> nn.Module:
    """Remove the QAT parametrizations in place, leaving each weight on its quantization grid.

    The weight kept is the fake-quantized one the model was trained with, as a plain parameter.
    """
    if qat_bits(model) is None:
        raise ValueError("QAT is not enabled on this model: nothing to export")
    for _, module in quantized_layers(model):
        if _fake_quant_of(module) is not None:
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model
