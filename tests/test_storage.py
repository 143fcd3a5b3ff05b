"""Storage formats (sramsim.storage): symmetric and robust (Stutz et al.'s RQuant) codes, deployed."""
import numpy as np
import pytest
import torch
from torch import nn

from sramsim import Chip, Deployment, MemoryConfig
from sramsim.array import ArrayGeometry
from sramsim.quant import fake_quantize
from sramsim.storage import STORAGE_FORMATS, get

ROBUST = get("robust")


def small_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 64),
                          nn.ReLU(), nn.Linear(64, 10))
    with torch.no_grad():   # ranges far from symmetric, so a wrong offset shows
        model[3].weight.add_(0.05)
        model[5].bias.add_(0.3)
    return model.eval()


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_robust_round_trip_is_within_half_a_step_and_exact_at_the_ends(bits):
    torch.manual_seed(bits)
    w = torch.randn(1000) * 0.1 + 0.04
    codes, params = ROBUST.quantize(w, bits)
    assert codes.dtype == torch.uint8 and int(codes.max()) < 2**bits
    decoded = ROBUST.decode(codes, params, bits)
    step = (float(w.max()) - float(w.min())) / (2**bits - 2)
    assert (decoded - w).abs().max() <= step / 2 * (1 + 1e-6)
    assert decoded[w.argmin()] == w.min() and decoded[w.argmax()] == w.max()
    # unsigned codes with offset 2^(b-1): the range's centre is code 2^(b-1), its ends 1 and 2^b-1
    assert int(codes[w.argmin()]) == 1 and int(codes[w.argmax()]) == 2**bits - 1


@pytest.mark.parametrize("bits", [3, 8])
def test_robust_read_clamps_every_code_into_the_range(bits):
    w = torch.tensor([-0.02, 0.01, 0.3, 0.5])
    _, params = ROBUST.quantize(w, bits)
    every_code = torch.arange(2**bits, dtype=torch.uint8)
    values = ROBUST.decode(every_code, params, bits)
    assert values.min() == w.min() and values.max() == w.max()
    assert ROBUST.decode(torch.tensor([0], dtype=torch.uint8), params, bits) == w.min()   # all bits 0
    assert ROBUST.decode(torch.tensor([2**bits - 1], dtype=torch.uint8), params, bits) == w.max()  # all 1
    # the symmetric format has no such guard: its code 100...0 reads far below the range
    codes, symmetric = get("symmetric").quantize(w, bits)
    assert get("symmetric").decode(torch.tensor([2**(bits - 1)], dtype=torch.uint8), symmetric, bits) < -0.4


def test_fake_quantize_is_the_decoded_value_with_an_identity_gradient():
    w = (torch.randn(200) * 0.2 + 0.1).requires_grad_()
    out = ROBUST.fake_quantize(w, 4)
    codes, params = ROBUST.quantize(w, 4)
    torch.testing.assert_close(out.detach(), ROBUST.decode(codes, params, 4), rtol=0, atol=1e-7)  # w + (v - w)
    out.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))
    assert torch.equal(get("symmetric").fake_quantize(w, 4), fake_quantize(w, 4))


def test_deployed_robust_weights_stay_inside_each_tensors_range_at_a_high_ber():
    model = small_model()
    ranges = {name: (p.min().item(), p.max().item()) for name, p in model.named_parameters()}
    params = dict(model.named_parameters())
    for bias in (False, True):
        deployment = Deployment(model, include_bias=bias, memory=MemoryConfig(bits=8, storage="robust"))
        for chip in range(3):
            with deployment.at(ber=0.2, chip=chip):
                for name in deployment.stored_names:
                    low, high = ranges[name]
                    assert low <= params[name].min().item() and params[name].max().item() <= high, name
    symmetric = Deployment(model)   # the symmetric format's faulty sign bits leave the range
    with symmetric.at(ber=0.2, chip=0):
        assert all(params[name].min().item() < ranges[name][0] for name in symmetric.stored_names)


@pytest.mark.parametrize("layout, bits", [("arrays", 4), ("neuralfuse-code", 8)])
def test_robust_faults_are_nested_across_voltages(layout, bits):
    model = small_model()
    deployment = Deployment(model, memory=MemoryConfig(bits=bits, storage="robust", layout=layout))
    with deployment.quantized():
        clean = [p.detach().clone() for p in model.parameters()]
    changed = []
    for voltage in (0.9, 0.86, 0.83):
        with deployment.at(voltage=voltage, chip=5):
            changed.append(torch.cat([(p != c).reshape(-1) for p, c in zip(model.parameters(), clean)]))
    assert changed[0].any()
    for high, low in zip(changed, changed[1:]):   # stuck-at: changed at V stays changed below
        assert not (high & ~low).any() and low.sum() > high.sum()


@pytest.mark.parametrize("fault_model", ["stuck-at", "flip"])
def test_a_chip_has_the_same_faulty_cells_in_both_formats(fault_model):
    model = small_model()
    reports = [Deployment(model, memory=MemoryConfig(storage=storage, fault_model=fault_model))
               .report(ber=0.02, chip=Chip(9)) for storage in STORAGE_FORMATS]
    assert [r["storage"] for r in reports] == ["symmetric", "robust"]
    for key in ("faulty_cells", "faulty_weight_cells"):
        assert reports[0][key] == reports[1][key] > 0
    assert [layer["faulty_cells"] for layer in reports[0]["layers"]] == \
        [layer["faulty_cells"] for layer in reports[1]["layers"]]
    if fault_model == "flip":   # every faulty cell flips its bit in either format
        assert reports[0]["flipped_bits"] == reports[1]["flipped_bits"] == reports[0]["faulty_weight_cells"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_robust_at_ber_zero_is_the_quantized_model(dtype):
    model = small_model().to(dtype)
    original = {name: p.detach().clone() for name, p in model.named_parameters()}
    deployment = Deployment(model, include_bias=True, memory=MemoryConfig(bits=5, storage="robust"))
    with deployment.at(ber=0, chip=0):
        for name, p in model.named_parameters():
            codes, params = ROBUST.quantize(original[name], 5)
            assert torch.equal(p, ROBUST.decode(codes, params, 5, dtype)), name
    for name, p in model.named_parameters():
        assert torch.equal(p, original[name])


def test_a_model_on_its_robust_grid_is_written_in_place_where_a_chip_changes_few_weights():
    """Few changes are written into the parameters' own tensors; a tensor where more than
    DENSE_FRACTION of the weights change gets its chip's weights in a copy, swapped in and out."""
    model = small_model()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(ROBUST.decode(*ROBUST.quantize(p, 8), 8))
    originals = [p.detach().clone() for p in model.parameters()]
    deployment = Deployment(model, include_bias=True, memory=MemoryConfig(storage="robust"))
    assert all(t.scratch is None for t in deployment._writer.tensors)
    before = [p.data_ptr() for p in model.parameters()]
    with deployment.at(ber=0.0005, chip=1):
        assert [p.data_ptr() for p in model.parameters()] == before
    with deployment.at(ber=0.05, chip=1):
        assert all(p.data_ptr() != b for p, b in zip(model.parameters(), before) if p.numel() > 1000)
    assert [p.data_ptr() for p in model.parameters()] == before
    assert all(torch.equal(p, o) for p, o in zip(model.parameters(), originals))
    # on the symmetric grid it is not on the robust one
    assert any(t.scratch is not None for t in Deployment(model, include_bias=True)._writer.tensors)


def test_batched_and_one_at_a_time_robust_writes_agree():
    model = small_model()
    batched = Deployment(model, geometry=ArrayGeometry(64, 64), memory=MemoryConfig(storage="robust"))
    with batched.at(ber=0.1, chip=4):
        fast = [p.detach().clone() for p in model.parameters()]
    single = Deployment(model, geometry=ArrayGeometry(64, 64), memory=MemoryConfig(storage="robust"))
    for tensor in single._writer.tensors:
        tensor.batched, tensor.array = False, None
    single._writer = type(single._writer)(single._writer.tensors)
    with single.at(ber=0.1, chip=4):
        slow = [p.detach().clone() for p in model.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(fast, slow))


def test_report_and_repr_say_the_format():
    deployment = Deployment(small_model(), memory=MemoryConfig(storage="robust"))
    report = deployment.report(ber=0.01, chip=0)
    assert report["storage"] == "robust" and "clamped" in report["storage_semantics"]
    assert "storage='robust'" in repr(deployment)


def test_an_unknown_storage_format_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown storage format 'asym': use one of symmetric, robust"):
        MemoryConfig(storage="asym")
    with pytest.raises(ValueError, match="unknown storage format 'asym'"):
        get("asym")
