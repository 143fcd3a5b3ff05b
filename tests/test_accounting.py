"""Weight-memory access accounting: topology extraction, the two engines, cache, registry, CLI."""
from __future__ import annotations

import functools
import math

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from sramsim.accounting import (SystolicConfig, create_network, extract_topology, filter_reads,
                                list_networks, network_kind, register_network, weight_accesses,
                                write_scalesim_topology)
from sramsim.accounting import engines, networks
from sramsim.cli import main

# Table 6 of the paper: total weight-memory accesses (T.W.M.A.), CIFAR-10 input.
TABLE6 = {"resnet18": 2_755_968, "resnet50": 6_182_144, "vgg11": 1_334_656, "vgg16": 2_366_848,
          "vgg19": 3_104_128, "ConvL": 320_256, "ConvS": 41_508, "DeConvL": 259_264,
          "DeConvS": 86_208, "UNetL": 180_894, "UNetS": 45_711}
FAST_SCALESIM = ["resnet18", "ConvL", "ConvS", "DeConvL", "DeConvS", "UNetL", "UNetS"]


@functools.cache
def network(name: str) -> nn.Module:
    """Each registered network built once per test process (counting leaves it unchanged)."""
    return create_network(name)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("SRAMSIM_CACHE_DIR", str(folder))
    return folder


class TinyUNetTail(nn.Module):
    """A padded 3×3 stride-2 conv, a BN, a shortcut 1×1 stride-2 conv, a transposed conv, a
    grouped conv, a shared conv run twice, a dilated conv, a linear layer on tokens, and a last
    1×1 conv."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.skip = nn.Conv2d(3, 6, 1, stride=2)
        self.up = nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1)
        self.grouped = nn.Conv2d(4, 8, 3, padding=1, groups=2)
        self.shared = nn.Conv2d(8, 8, 3, padding=1)
        self.dilated = nn.Conv2d(8, 8, 3, padding=2, dilation=2)
        self.tokens = nn.Linear(11, 5)
        self.head = nn.Conv2d(8, 3, 1)

    def forward(self, x):
        y = torch.relu(self.bn(self.down(x))) + self.skip(x)
        y = self.grouped(self.up(y))
        y = self.dilated(self.shared(self.shared(y)))
        z = self.tokens(y[:, :, :, :11])
        return self.head(y) + z.mean()


def layers_by_name(model, shape=(3, 22, 22), convention="paper"):
    return {layer.name: layer for layer in extract_topology(model, shape, convention)}


def test_paper_convention_folds_padding_and_keeps_scalesim_output_size():
    layers = layers_by_name(TinyUNetTail())
    down = layers["down"]
    assert (down.ifmap_h, down.filter_h, down.stride_h, down.out_shape) == (24, 3, 2, (6, 11, 11))
    assert down.ofmap_h == 12            # SCALE-SIM's ceil((24-3+2)/2), PyTorch gives 11
    skip = layers["skip"]                # 1×1: no padding; SCALE-SIM's size, ceil(23/2), again
    assert (skip.ifmap_h, skip.ofmap_h, skip.out_shape) == (22, 12, (6, 11, 11))
    up = layers["up"]                    # conv over output + 2, stride 1, channels swapped
    assert (up.ifmap_h, up.stride_h, up.channels, up.filters, up.kind) == (24, 1, 4, 6, "deconv")
    assert layers["head"].ifmap_h == 24  # the last layer, a 1×1 conv, on a map padded by 1
    tokens = layers["tokens"]
    assert (tokens.kind, tokens.ifmap_h, tokens.channels, tokens.filters) == ("linear", 8 * 22, 11, 5)
    assert (layers["grouped"].groups, layers["grouped"].channels, layers["grouped"].filters) == (2, 2, 4)
    dilated = layers["dilated"]          # padding 2 minus the dilation's extra span 2
    assert (dilated.ifmap_h, dilated.ofmap_h, dilated.out_shape[-1]) == (22 + 4 - 2, 22, 22)
    assert "shared#2" in layers and len(layers) == 9   # BN, ReLU, additions are not layers


def test_exact_convention_uses_real_output_sizes():
    model = TinyUNetTail()
    for layer in extract_topology(model, (3, 22, 22), "exact"):
        if layer.kind != "linear":
            assert (layer.ofmap_h, layer.ofmap_w) == layer.out_shape[-2:], layer.name
    up = layers_by_name(model, convention="exact")["up"]
    assert (up.channels, up.filters, up.ifmap_h) == (6, 4, 22 + 4 - 1)


@pytest.mark.parametrize("name", sorted(TABLE6))
def test_exact_convention_matches_pytorch_on_every_network(name):
    for layer in extract_topology(network(name), (3, 32, 32), "exact"):
        if layer.kind != "linear":
            assert (layer.ofmap_h, layer.ofmap_w) == layer.out_shape[-2:], layer.name


def test_extraction_leaves_the_model_as_it_was():
    model = TinyUNetTail().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    extract_topology(model, (3, 22, 22))
    assert model.training and model.bn.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.down._forward_hooks


def test_closed_form_by_hand():
    # 3→8 3×3 pad 1 on 32×32: 1024 outputs in 32 folds of 32 rows, each streaming 27·8 weights.
    df = weight_accesses(nn.Conv2d(3, 8, 3, padding=1), (3, 32, 32))
    assert df.filter_reads.tolist() == [32 * 27 * 8]
    assert df.row_accesses.tolist() == [32 * 27 * 8 / 8]
    df4 = weight_accesses(nn.Conv2d(3, 8, 3, padding=1), (3, 32, 32), SystolicConfig(weight_bits=4))
    assert df4.row_accesses.tolist() == [32 * 27 * 8 / 16]
    assert df.macs.tolist() == [32 * 32 * 27 * 8]


CONFIGS = [SystolicConfig(), SystolicConfig(array_rows=5, array_cols=7),
           SystolicConfig(array_rows=16, array_cols=8, dataflow="ws"),
           SystolicConfig(array_rows=3, array_cols=4, dataflow="ws"),
           SystolicConfig(array_rows=8, array_cols=16, dataflow="is"),
           SystolicConfig(array_rows=6, array_cols=5, dataflow="is")]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.dataflow}-{c.array_rows}x{c.array_cols}")
@pytest.mark.parametrize("convention", ["paper", "exact"])
def test_engines_agree_on_awkward_layers(config, convention):
    layers = extract_topology(TinyUNetTail(), (3, 22, 22), convention)
    analytic = filter_reads(layers, config, "analytic")
    scalesim = filter_reads(layers, config, "scalesim", use_cache=False)
    assert analytic.tolist() == scalesim.tolist()


@pytest.mark.parametrize("name", sorted(TABLE6))
def test_table6_closed_form(name):
    df = weight_accesses(network(name), (3, 32, 32))
    assert df.row_accesses.sum() == TABLE6[name]
    assert df.filter_reads.sum() == 8 * TABLE6[name]   # SCALE-SIM counts 1-byte words


@pytest.mark.parametrize("name", FAST_SCALESIM)
def test_table6_scalesim_engine_agrees_layer_by_layer(name):
    model = network(name)
    analytic = weight_accesses(model, (3, 32, 32))
    scalesim = weight_accesses(model, (3, 32, 32), engine="scalesim")
    assert scalesim.filter_reads.tolist() == analytic.filter_reads.tolist()
    assert scalesim.row_accesses.sum() == TABLE6[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(TABLE6) - set(FAST_SCALESIM)))
def test_table6_scalesim_engine_agrees_on_large_models(name):
    test_table6_scalesim_engine_agrees_layer_by_layer(name)


def test_scalesim_results_are_cached_in_the_cache_dir_only(cache_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    layers = extract_topology(TinyUNetTail(), (3, 22, 22))
    first = filter_reads(layers, SystolicConfig(), "scalesim")
    assert len(list(cache_dir.iterdir())) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]

    def fail(*args):
        raise AssertionError("scalesim ran again")
    monkeypatch.setattr(engines, "_scalesim_layer_reads", fail)
    assert filter_reads(layers, SystolicConfig(), "scalesim").tolist() == first.tolist()
    with pytest.raises(AssertionError, match="ran again"):   # another config is another key
        filter_reads(layers, SystolicConfig(array_rows=16), "scalesim")


def test_write_scalesim_topology(tmp_path):
    path = tmp_path / "topo.csv"
    layers = extract_topology(TinyUNetTail(), (3, 22, 22))
    write_scalesim_topology(layers, path)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("Layer name, IFMAP Height")
    assert lines[1] == "down, 24, 24, 3, 3, 3, 6, 2,"
    assert len(lines) == 1 + len(layers) + 1            # the 2-group conv is two rows
    assert [ln.split(",")[0] for ln in lines if ln.startswith("grouped")] == ["grouped/g0", "grouped/g1"]


@pytest.mark.parametrize("kwargs, message", [
    ({"array_rows": 0}, "array_rows=0"), ({"array_cols": -3}, "array_cols=-3"),
    ({"dataflow": "rs"}, "dataflow='rs' is unknown"),
    ({"row_bits": 4, "weight_bits": 8}, "does not fit"), ({"weight_bits": 1}, r"weight_bits=1 .* in \[2, 8\]"),
])
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SystolicConfig(**kwargs)


def test_bad_calls():
    with pytest.raises(ValueError, match="input_shape"):
        extract_topology(nn.Linear(3, 2), (3, 0))
    with pytest.raises(ValueError, match="convention='real' is unknown"):
        extract_topology(nn.Linear(3, 2), (3,), "real")
    with pytest.raises(ValueError, match="engine='fast' is unknown"):
        weight_accesses(nn.Linear(3, 2), (3,), engine="fast")
    with pytest.raises(ValueError, match="ran no conv"):
        weight_accesses(nn.ReLU(), (3,))
    with pytest.raises(ValueError, match="Conv1d"):
        weight_accesses(nn.Conv1d(3, 2, 1), (3, 5))
    with pytest.raises(ValueError, match="cannot run on an input of shape 4x8x8"):
        weight_accesses(nn.Conv2d(3, 2, 1), (4, 8, 8))


def test_registry(monkeypatch):
    list_networks()                       # load the entry points, then work on a copy
    monkeypatch.setattr(networks.NETWORKS, "_entries", dict(networks.NETWORKS._entries))
    assert set(list_networks("model")) == {"resnet18", "resnet50", "vgg11", "vgg16", "vgg19"}
    assert set(list_networks("generator")) >= {"ConvL", "ConvS", "DeConvL", "DeConvS", "UNetL", "UNetS"}
    assert network_kind("unets") == "generator"

    def tiny():
        return nn.Conv2d(3, 3, 1)
    register_network("TinyNet", tiny, "generator")
    register_network("TinyNet", tiny, "generator")          # the same again is a no-op
    assert isinstance(create_network("tinynet"), nn.Conv2d)
    with pytest.raises(ValueError, match="already registered"):
        register_network("TINYNET", nn.Identity, "model")
    with pytest.raises(ValueError, match="kind='other'"):
        register_network("x", tiny, "other")
    with pytest.raises(KeyError, match="unknown network 'nope'; known: .*resnet18"):
        create_network("nope")


def test_cli_accesses(tmp_path):
    csv = tmp_path / "a.csv"
    result = CliRunner().invoke(main, ["accesses", "--model", "ConvS", "--csv", str(csv)])
    assert result.exit_code == 0, result.output
    assert "filter reads 332,064" in result.output and "41,508.0" in result.output
    assert csv.read_text().splitlines()[0].startswith("layer,kind,in_shape")


@pytest.mark.parametrize("args, hint", [
    (["--model", "nope"], "unknown network 'nope'; known:"),
    (["--model", "ConvS", "--input", "3x32x"], "'3x32x' is not of the form"),
    (["--model", "ConvS", "--array", "0x32"], "'0x32' is not of the form ROWSxCOLS"),
    (["--model", "ConvS", "--dataflow", "xs"], "'xs' is not one of"),
    (["--model", "ConvS", "--input", "4x32x32"], "cannot run on an input of shape 4x32x32"),
    (["--model", "resnet18", "--input", "3x32"], "its first convolution takes 3-channel images: give "
     "channels x height x width, e.g. 3x32x32"),
])
def test_cli_accesses_bad_input(tmp_path, args, hint):
    csv = tmp_path / "a.csv"
    result = CliRunner().invoke(main, ["accesses", *args, "--csv", str(csv)])
    assert result.exit_code == 2
    error_lines = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(error_lines) == 1 and hint in error_lines[0]
    assert "Traceback" not in result.output and not csv.exists()


def test_cli_accesses_csv_in_a_missing_folder(tmp_path):
    result = CliRunner().invoke(main, ["accesses", "--model", "ConvS",
                                       "--csv", str(tmp_path / "missing" / "a.csv")])
    assert result.exit_code == 2 and "folder" in result.output and "Traceback" not in result.output


def test_row_accesses_sum_to_reads_over_words_per_row():
    config = SystolicConfig(row_bits=128, weight_bits=4)
    df = weight_accesses("ConvS", (3, 32, 32), config)
    assert math.isclose(df.row_accesses.sum(), df.filter_reads.sum() / 32)
