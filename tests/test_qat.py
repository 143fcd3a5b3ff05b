"""Quantization-aware training: fake-quantized forward, STE gradient, export onto the grid."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from neuralfuse.models import create_model
from neuralfuse.qat import FakeQuant, enable_qat, export_quantized, qat_bits, quantized_layers
from sramsim.deployment import Deployment
from sramsim.quant import dequantize, fake_quantize, quantize


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.ConvTranspose2d(4, 2, 2, stride=2), nn.Flatten(), nn.LazyLinear(3))


def trained_qat_resnet(bits: int) -> nn.Module:
    """A tiny ResNet after a few QAT steps, so weights are off-grid before export."""
    torch.manual_seed(1)
    model = enable_qat(create_model("resnet18", num_classes=5, width=0.0625), bits=bits)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 5, (8,))
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def test_enable_qat_wraps_every_conv_transposed_conv_and_linear_weight():
    model = small_net()
    model(torch.randn(1, 3, 8, 8))  # materialize the lazy linear
    enable_qat(model, bits=6)
    layers = dict(quantized_layers(model))
    assert set(layers) == {"0", "3", "5"}
    for module in layers.values():
        assert isinstance(module.parametrizations.weight[0], FakeQuant)
        assert torch.equal(module.weight, fake_quantize(module.parametrizations.weight.original, 6))
    assert qat_bits(model) == 6
    assert isinstance(model[1].weight, nn.Parameter)  # BatchNorm stays float


def test_qat_gradient_is_straight_through():
    layer = enable_qat(nn.Sequential(nn.Linear(5, 1, bias=False)), bits=3)[0]
    x = torch.randn(7, 5)
    layer(x).sum().backward()
    assert torch.allclose(layer.parametrizations.weight.original.grad, x.sum(0, keepdim=True))


def test_enable_qat_rejects_bad_bits_double_enable_and_models_without_layers():
    with pytest.raises(ValueError, match="bits=9"):
        enable_qat(small_net(), bits=9)
    model = enable_qat(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="already enabled"):
        enable_qat(model)
    with pytest.raises(ValueError, match="no conv or linear"):
        enable_qat(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="not enabled"):
        export_quantized(nn.Linear(2, 2))


@pytest.mark.parametrize("bits", [8, 4, 2])
def test_exported_weights_lie_exactly_on_the_deployment_grid(bits):
    model = trained_qat_resnet(bits)
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        before = model(x)
        export_quantized(model)
        after = model(x)
    assert qat_bits(model) is None
    assert torch.equal(before, after)  # the exported model computes exactly what QAT trained
    for name, module in quantized_layers(model):
        w = module.weight.detach()
        q, s = quantize(w, bits)  # what sramsim's Deployment does
        assert torch.equal(dequantize(q, s, w.dtype), w), name
        assert int(q.abs().max()) == 2 ** (bits - 1) - 1, name


def test_sramsim_deployment_of_an_exported_model_changes_nothing():
    model = export_quantized(trained_qat_resnet(8))
    before = {name: module.weight.detach().clone() for name, module in quantized_layers(model)}
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        clean = model(x)
        with Deployment(model, bits=8).quantized() as deployed:
            assert all(torch.equal(m.weight, before[n]) for n, m in quantized_layers(deployed))
            assert torch.equal(deployed(x), clean)
