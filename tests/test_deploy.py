"""Deploying a torch model on a simulated chip: quantized weights, faults, restoration."""
import copy
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

import characterization
import sramsim
from sramsim import Chip, Deployment
from sramsim._writes import CHUNK, DENSE_FRACTION, WeightWriter
from sramsim.array import ArrayGeometry
from sramsim.quant import dequantize, quantize, to_codes


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.ConvTranspose2d(8, 4, 2, stride=2), nn.Flatten(),
        nn.Linear(4 * 16 * 16, 64), nn.ReLU(), nn.Linear(64, 64), nn.Linear(64, 10),
    ).eval()


STORED = ["0.weight", "3.weight", "5.weight", "7.weight", "8.weight"]


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_bit_equal(before: dict, model: nn.Module) -> None:
    after = model.state_dict()
    for name, value in before.items():
        assert torch.equal(value.reshape(-1).view(torch.uint8),
                           after[name].reshape(-1).view(torch.uint8)), name


def stored_integers(model: nn.Module, deployed: nn.Module, bits: int) -> dict[str, tuple]:
    """Per stored tensor: (clean codes, codes as deployed) from the scales of the clean model."""
    out = {}
    clean, now = model.state_dict(), deployed.state_dict()
    for name in STORED:
        q, s = quantize(clean[name], bits)
        q_now = torch.round(now[name] / s).to(torch.int8)
        torch.testing.assert_close(now[name], dequantize(q_now, s), rtol=0, atol=0)
        out[name] = (to_codes(q, bits), to_codes(q_now, bits))
    return out


def flipped_bits(codes: dict) -> dict[str, int]:
    return {name: int(sum(((a ^ b) >> i & 1).sum() for i in range(8))) for name, (a, b) in codes.items()}


def test_at_perturbs_the_model_itself_and_restores_bit_exactly():
    model = small_model()
    before = snapshot(model)
    deployment = Deployment(model)
    with deployment.at(ber=0.01, chip=3) as perturbed:
        assert perturbed is model
        assert not torch.equal(model[5].weight, before["5.weight"])
    assert_bit_equal(before, model)


def test_the_parameters_hold_the_chip_weights_and_their_own_storage_keeps_the_originals():
    """Inside the block the model's own Parameter objects hold the chip's weights (their storage
    swapped to scratch tensors with the same strides); the storage they had is never written, so
    a state_dict taken before keeps the originals throughout, and leaving copies nothing back."""
    model = small_model()
    model[0].to(memory_format=torch.channels_last)
    params, saved, before = list(model.parameters()), model.state_dict(), snapshot(model)
    deployment = Deployment(model)
    with deployment.at(ber=0.05, chip=3):
        assert all(a is b for a, b in zip(model.parameters(), params))
        assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
        assert all(not torch.equal(model.get_parameter(name), saved[name]) for name in STORED)
        for name, value in before.items():
            assert torch.equal(saved[name], value), name
    assert all(model.get_parameter(name).data_ptr() == saved[name].data_ptr() for name in STORED)
    assert_bit_equal(before, model)


def test_a_model_compiled_before_the_block_runs_the_chip_weights_inside_it():
    model = small_model()
    x = torch.randn(4, 3, 8, 8)
    compiled = torch.compile(model, backend="aot_eager")   # Dynamo's handling of parameters
    deployment = Deployment(model)
    with torch.no_grad():
        clean = compiled(x)
        with deployment.at(ber=0.05, chip=3):
            torch.testing.assert_close(compiled(x), model(x))
            assert not torch.allclose(compiled(x), clean)
        assert torch.equal(compiled(x), clean)


def test_restored_after_an_exception_inside_the_block():
    model = small_model()
    before = snapshot(model)
    deployment = Deployment(model)
    with pytest.raises(KeyError):
        with deployment.at(ber=0.02, chip=1):
            raise KeyError("boom")
    assert_bit_equal(before, model)
    with deployment.at(ber=0.02, chip=1):   # usable again
        pass
    assert_bit_equal(before, model)


def test_forward_and_backward_inside_the_block_with_trainable_weights():
    model = small_model()
    before = snapshot(model)
    deployment = Deployment(model)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    with deployment.at(ber=0.01, chip=5) as perturbed:
        perturbed(x).square().sum().backward()
    assert x.grad is not None and model[0].weight.grad is not None
    assert_bit_equal(before, model)


def test_a_fault_free_chip_runs_the_quantized_model():
    model = small_model()
    reference = copy.deepcopy(model)
    deployment = Deployment(model)
    with deployment.at(ber=0, chip=0):
        for name in STORED:
            w = reference.state_dict()[name]
            assert torch.equal(model.state_dict()[name], dequantize(*quantize(w)))
        with_ber_zero = snapshot(model)
    with deployment.quantized():
        assert_bit_equal(with_ber_zero, model)


@pytest.mark.parametrize("bits", [8, 4])
def test_flipped_bits_match_the_report_and_are_half_the_faulty_cells(bits):
    model = small_model()
    deployment = Deployment(model, bits=bits)
    report = deployment.report(ber=0.02, chip=7)
    with deployment.at(ber=0.02, chip=7) as perturbed:
        codes = stored_integers(small_model(), perturbed, bits)
    flips = flipped_bits(codes)
    layers = {layer["name"]: layer for layer in report["layers"]}
    assert [layer["name"] for layer in report["layers"]] == STORED
    for name in STORED:
        assert flips[name] == layers[name]["flipped_bits"]
        changed = int((codes[name][0] != codes[name][1]).sum())
        assert changed == layers[name]["changed_weights"]
    assert sum(flips.values()) == report["flipped_bits"]
    n = report["faulty_weight_cells"]
    assert abs(report["flipped_bits"] - n / 2) < 4 * math.sqrt(n / 4)
    weight_cells = report["weights"] * bits
    assert abs(n - 0.02 * weight_cells) < 4 * math.sqrt(0.02 * weight_cells)


def test_flip_model_flips_every_faulty_cell():
    deployment = Deployment(small_model(), fault_model="flip")
    report = deployment.report(ber=0.02, chip=7)
    assert report["flipped_bits"] == report["faulty_weight_cells"] > 0
    assert report["fault_model"] == "flip" and "inverts" in report["fault_model_semantics"]
    stuck_at = Deployment(small_model()).report(ber=0.02, chip=7)
    assert stuck_at["faulty_weight_cells"] == report["faulty_weight_cells"]
    assert stuck_at["flipped_bits"] < report["flipped_bits"]


def test_faults_follow_the_chip_map_and_the_layout():
    """Slow obvious version: apply each faulty cell of the chip's map to the codes by hand."""
    bits, model, reference = 8, small_model(), small_model()
    deployment = Deployment(model, bits=bits)
    clean = [quantize(p, bits)[0].reshape(-1) for p in (model.state_dict()[n] for n in STORED)]
    codes = to_codes(torch.cat(clean), bits).numpy().astype(np.int64)
    fault_map = Chip(seed=4).fault_map(deployment.layout.n_cells, ber=0.01)
    for cell, stuck in zip(fault_map.cells.tolist(), fault_map.stuck.tolist()):
        array, rest = divmod(cell, 512 * 64)
        row, col = divmod(rest, 64)
        word = (array * 512 + row) * 8 + col // 8
        if word < codes.size:
            codes[word] = codes[word] & ~(1 << col % 8) | stuck << col % 8
    with deployment.at(ber=0.01, chip=4) as perturbed:
        deployed = stored_integers(reference, perturbed, bits)
    got = np.concatenate([deployed[n][1].reshape(-1).numpy() for n in STORED])
    np.testing.assert_array_equal(got, codes)


def test_the_same_chip_gives_the_same_weights_in_two_deployments():
    first, second = small_model(), small_model()
    a, b = Deployment(first), Deployment(second)
    with a.at(ber=0.01, chip=Chip(9)), b.at(ber=0.01, chip=9):
        assert_bit_equal(snapshot(first), second)
    with a.at(ber=0.01, chip=9), b.at(ber=0.01, chip=10):
        assert not torch.equal(first[5].weight, second[5].weight)


def test_layers_do_not_share_fault_positions():
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(60, 64, bias=False) for _ in range(4)])
    deployment = Deployment(model)
    before = snapshot(model)
    with deployment.at(ber=0.02, chip=2):
        hit = [set(torch.nonzero((model[i].weight != dequantize(*quantize(before[f"{i}.weight"])))
                                 .flatten()).flatten().tolist()) for i in range(4)]
    # 64x60 int8 weights fill 480 rows: layer 1 starts in row 480, not at row 0
    assert deployment.layout.locate(1, 0) == (0, 480, 0)
    assert all(len(h) > 0 for h in hit)
    assert len({frozenset(h) for h in hit}) == 4


def test_biases_and_batchnorm_are_untouched_unless_asked():
    model = small_model()
    before = snapshot(model)
    deployment = Deployment(model)
    with deployment.at(ber=0.05, chip=1):
        for name, value in model.state_dict().items():
            if name not in STORED:
                assert torch.equal(value, before[name]), name
    with_bias = Deployment(model, include_bias=True)
    report = with_bias.report(ber=0.05, chip=1)
    assert "5.bias" in [layer["name"] for layer in report["layers"]]
    assert "1.weight" not in [layer["name"] for layer in report["layers"]]
    with with_bias.at(ber=0.05, chip=1):
        assert not torch.equal(model[5].bias, before["5.bias"])
        assert torch.equal(model[1].weight, before["1.weight"])
    assert_bit_equal(before, model)


def test_voltage_is_converted_with_the_technology_and_reported():
    model = small_model()
    deployment = Deployment(model)
    tech = characterization.load(characterization.DEFAULT_TECH)
    with deployment.at(voltage=0.83, chip=3):
        by_voltage = snapshot(model)
    with deployment.at(ber=tech.ber(0.83), chip=3):
        assert_bit_equal(by_voltage, model)
    report = deployment.report(voltage=0.83, chip=3)
    json.dumps(report)
    assert report["voltage"] == 0.83 and report["ber"] == pytest.approx(tech.ber(0.83))
    assert report["ber"] == pytest.approx(0.012, rel=0.02)  # the measured curve: 1.2% at 0.83 Vmin
    assert report["energy_per_access"] == pytest.approx(tech.energy_per_access(0.83))
    assert report["tech"] == characterization.DEFAULT_TECH and report["chip"] == 3
    assert report["cells"] == report["arrays"] * 512 * 64 >= report["weight_cells"]


def test_nesting_at_in_quantized_gives_the_same_weights():
    model = small_model()
    before = snapshot(model)
    deployment = Deployment(model)
    with deployment.at(ber=0.01, chip=3):
        alone = snapshot(model)
    with deployment.quantized():
        clean = snapshot(model)
        for chip in (3, 4):
            with deployment.at(ber=0.01, chip=chip):
                if chip == 3:
                    assert_bit_equal(alone, model)
            assert_bit_equal(clean, model)
        with pytest.raises(RuntimeError, match="nest"):
            with deployment.quantized():
                pass
    assert_bit_equal(before, model)
    with pytest.raises(RuntimeError, match="nest"):
        with deployment.at(ber=0.01, chip=3), deployment.at(ber=0.01, chip=4):
            pass
    assert_bit_equal(before, model)


def test_weights_already_on_the_grid_are_restored_exactly():
    model = small_model()
    with torch.no_grad():
        for name in STORED:
            w = model.get_parameter(name)
            w.copy_(dequantize(*quantize(w)))
    before = snapshot(model)
    deployment = Deployment(model)
    with deployment.at(ber=0.01, chip=3):
        assert not torch.equal(model[5].weight, before["5.weight"])
    assert_bit_equal(before, model)


def test_channels_last_weights_are_perturbed_like_contiguous_ones():
    model, other = small_model(), small_model()
    other[0].to(memory_format=torch.channels_last)
    before = snapshot(other)
    with Deployment(model).at(ber=0.05, chip=3), Deployment(other).at(ber=0.05, chip=3):
        assert torch.equal(model[0].weight, other[0].weight)
    assert_bit_equal(before, other)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_other_dtypes_are_perturbed_and_restored(dtype):
    model, reference = small_model().to(dtype), small_model()
    before = snapshot(model)
    clean = {m: dequantize(*quantize(m[5].weight), dtype=m[5].weight.dtype) for m in (model, reference)}
    with Deployment(model, fault_model="flip").at(ber=0.02, chip=3), \
            Deployment(reference, fault_model="flip").at(ber=0.02, chip=3):
        changed = model[5].weight != clean[model]
        assert changed.any()
        assert torch.equal(changed, reference[5].weight != clean[reference])
    assert_bit_equal(before, model)


@pytest.mark.parametrize("ber", [0.002, 0.03])
def test_batched_writes_match_one_tensor_at_a_time(ber):
    """Contiguous float32 and float64 tensors are written in batches by dtype, in pieces of at most
    CHUNK elements; the rest one at a time. Both give the same weights, and both restore. A chip
    that changes few weights of a batched tensor writes them one by one, one that changes many
    rewrites the tensor (at 0.2% and 3% BER: below and above DENSE_FRACTION)."""
    def mixed() -> nn.Module:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(300, 250), nn.Linear(250, 40).double(), nn.Linear(40, 30).half(),
                              nn.Conv2d(3, 8, 3), nn.Linear(30, 20))
        model[3].to(memory_format=torch.channels_last)  # not contiguous: written by NumPy
        return model

    batched, single = Deployment(mixed()), Deployment(mixed())
    assert 300 * 250 > CHUNK
    report = batched.report(ber=ber, chip=0)
    assert (report["changed_weights"] > DENSE_FRACTION * report["weights"]) == (ber > 0.01)
    for tensor in single._writer.tensors:
        tensor.batched = False
    single._writer = WeightWriter(single._writer.tensors)
    assert len(batched._writer._batches) == 2 and not single._writer._batches
    before = snapshot(batched.model)
    for chip in (0, 1):
        with batched.quantized(), single.quantized():
            with batched.at(ber=ber, chip=chip) as a, single.at(ber=ber, chip=chip) as b:
                assert_bit_equal(snapshot(b), a)
            assert_bit_equal(snapshot(single.model), batched.model)
        with batched.at(ber=ber, chip=chip) as a, single.at(ber=ber, chip=chip) as b:
            assert_bit_equal(snapshot(b), a)
    assert_bit_equal(before, batched.model)


def test_a_graph_kept_past_the_block_cannot_backpropagate_through_stale_weights():
    model = small_model()
    deployment = Deployment(model)
    with deployment.at(ber=0.01, chip=3) as perturbed:
        loss = perturbed(torch.randn(1, 3, 8, 8)).sum()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_weights_changed_after_deployment_are_refused():
    model = small_model()
    deployment = Deployment(model)
    with torch.no_grad():
        model[5].weight.mul_(2)
    with pytest.raises(RuntimeError, match="5.weight changed"):
        with deployment.at(ber=0.01, chip=0):
            pass


def test_deploy_returns_a_perturbed_copy():
    model = small_model()
    before = snapshot(model)
    perturbed = sramsim.deploy(model, ber=0.01, chip=3)
    assert perturbed is not model
    assert_bit_equal(before, model)
    with Deployment(model).at(ber=0.01, chip=3):
        assert_bit_equal(snapshot(model), perturbed)


def test_bad_arguments_are_refused():
    model = small_model()
    deployment = Deployment(model)
    with pytest.raises(ValueError, match="exactly one of voltage"):
        with deployment.at(chip=0):
            pass
    with pytest.raises(ValueError, match="exactly one of voltage"):
        deployment.report(voltage=0.83, ber=0.01, chip=0)
    with pytest.raises(ValueError, match="'bitflip'"):
        Deployment(model, fault_model="bitflip")
    with pytest.raises(ValueError, match="bits=9"):
        Deployment(model, bits=9)
    with pytest.raises(ValueError, match="no-such-tech"):
        Deployment(model, tech="no-such-tech")
    with pytest.raises(ValueError, match="does not match"):
        with deployment.at(ber=0.01, chip=Chip(0, geometry=ArrayGeometry(256, 64))):
            pass
    with pytest.raises(ValueError, match="seed=-4"):
        deployment.report(ber=0.01, chip=-4)
    with pytest.raises(ValueError, match="no nn.Linear"):
        Deployment(nn.Sequential(nn.ReLU()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_weights_are_perturbed_like_cpu_weights():
    model, gpu = small_model(), small_model().cuda()
    before = snapshot(gpu)
    with Deployment(model).at(ber=0.02, chip=3), Deployment(gpu).at(ber=0.02, chip=3):
        for name in STORED:
            assert torch.equal(model.get_parameter(name), gpu.get_parameter(name).cpu())
    assert_bit_equal(before, gpu)


# -- what is stored: attention, embeddings, coverage --------------------------------------------

class TinyTransformer(nn.Module):
    """Token embedding, a 2-layer nn.TransformerEncoder of width 32, and an output Linear."""

    def __init__(self, vocabulary: int = 1000) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocabulary, 32)
        layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.0)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(32, vocabulary)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(tokens)))


def transformer() -> TinyTransformer:
    torch.manual_seed(0)
    return TinyTransformer().eval()


def test_attention_projections_are_stored_and_perturbed_embeddings_only_when_asked():
    model = transformer()
    before = snapshot(model)
    with pytest.warns(sramsim.deployment.UnstoredWeightWarning, match="embed.weight .*include_embeddings=True"):
        deployment = Deployment(model)
    names = list(deployment.stored_names)
    assert names == [f"encoder.layers.{i}.{n}" for i in (0, 1) for n in
                     ("self_attn.in_proj_weight", "self_attn.out_proj.weight", "linear1.weight",
                      "linear2.weight")] + ["head.weight"]
    tokens = torch.randint(0, 1000, (2, 9))
    with torch.no_grad():
        clean = model(tokens)
        with deployment.at(ber=0.05, chip=2):
            attention = model.encoder.layers[0].self_attn.in_proj_weight
            assert not torch.equal(attention, before["encoder.layers.0.self_attn.in_proj_weight"])
            assert torch.equal(model.embed.weight, before["embed.weight"])
            assert not torch.equal(model(tokens), clean)
    assert_bit_equal(before, model)

    with_embeddings = Deployment(model, include_embeddings=True)
    assert with_embeddings.stored_names[0] == "embed.weight"
    with with_embeddings.at(ber=0.05, chip=2):
        assert not torch.equal(model.embed.weight, before["embed.weight"])
    assert_bit_equal(before, model)


def test_separate_query_key_value_weights_are_stored():
    torch.manual_seed(0)
    attention = nn.MultiheadAttention(32, 4, kdim=16, vdim=24)
    assert not attention._qkv_same_embed_dim
    deployment = Deployment(attention, include_bias=True)
    names = list(deployment.stored_names)
    assert names == ["q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias",
                     "out_proj.weight", "out_proj.bias"]
    report = deployment.report(ber=0.05, chip=0)
    assert report["coverage"] == 1.0 and report["stored_parameters"] == sum(p.numel() for p in attention.parameters())


def test_report_gives_the_coverage_per_kind():
    model = transformer()
    with pytest.warns(sramsim.deployment.UnstoredWeightWarning):
        report = Deployment(model).report(ber=0.01, chip=0)
    kinds = {r["kind"]: r for r in report["coverage_by_kind"]}
    assert set(kinds) == {"attention", "embedding", "linear", "norm"}
    d = 32
    attention_weights = 2 * 3 * d * d     # in_proj_weight of both layers; in_proj_bias is not stored
    assert kinds["attention"]["stored"] == attention_weights
    assert kinds["attention"]["parameters"] == attention_weights + 2 * 3 * d
    assert kinds["embedding"] == {"kind": "embedding", "parameters": 32_000, "stored": 0, "coverage": 0.0}
    assert kinds["norm"]["stored"] == 0
    linear = 2 * (d * d + 2 * d * 64) + d * 1000   # out_proj, linear1, linear2 per layer; head
    assert kinds["linear"]["stored"] == linear
    assert report["parameters"] == sum(p.numel() for p in model.parameters())
    assert report["stored_parameters"] == attention_weights + linear == report["weights"]
    assert report["coverage"] == pytest.approx(report["stored_parameters"] / report["parameters"])
    json.dumps(report)


def test_a_large_unstored_weight_warns_once_with_how_to_store_it(recwarn):
    model = transformer()
    model.register_parameter("positions", nn.Parameter(torch.randn(200, 32)))   # 6,400 weights
    model.register_parameter("scale", nn.Parameter(torch.ones(8192)))          # one-dimensional
    model.register_parameter("small", nn.Parameter(torch.ones(10, 10)))        # below the threshold
    Deployment(model)
    messages = [str(w.message) for w in recwarn.list if w.category is sramsim.deployment.UnstoredWeightWarning]
    assert len(messages) == 2
    assert any("positions (other, 6,400 weights)" in m and "extra_tensors=['positions']" in m for m in messages)
    assert any(m.startswith("embed.weight") for m in messages)
    recwarn.clear()
    deployment = Deployment(model, include_embeddings=True, extra_tensors=["positions"])
    assert not [w for w in recwarn.list if w.category is sramsim.deployment.UnstoredWeightWarning]
    assert "positions" in list(deployment.stored_names)
    with pytest.raises(ValueError, match=r"extra_tensors \['nope'\] are not parameters"):
        Deployment(model, extra_tensors=["nope"])


def test_a_model_without_stored_layers_is_refused_with_what_to_do():
    with pytest.raises(ValueError, match="include_embeddings=True"):
        Deployment(nn.Sequential(nn.Embedding(10, 4)))
    assert len(Deployment(nn.Sequential(nn.Embedding(10, 4)), include_embeddings=True).stored_names) == 1
