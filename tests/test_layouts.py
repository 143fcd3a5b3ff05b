"""Fault layouts: the physical ``arrays`` layout and the NeuralFuse authors' ``neuralfuse-code`` layout."""
import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from neuralfuse import cli, eopm
from neuralfuse.checkpoint import save_checkpoint
from neuralfuse.data import fixed_subset, load_dataset
from neuralfuse.eopm import TrainConfig
from neuralfuse.evaluation import evaluate
from neuralfuse.models import create_model
from neuralfuse.tradeoff import sweep
from sramsim import Deployment, MemoryConfig, OperatingPoint, deploy
from sramsim._writes import CHUNK
from sramsim.array import ArrayGeometry
from sramsim.faults import FaultMap
from sramsim.layouts import (LAYOUTS, MAP_GEOMETRY, WEIGHTS_PER_MAP, apply_code_faults,
                             code_fault_map, locate)
from sramsim.quant import quantize

CODE = "neuralfuse-code"
REPO = Path(__file__).resolve().parent.parent


def hand_map(cells: list[tuple[int, int, int]]) -> FaultMap:
    """A fault map of the 8,192 x 128 map with faulty cells (row, column, stuck value)."""
    flat = np.array([r * 128 + c for r, c, _ in cells], dtype=np.int64)
    order = np.argsort(flat)
    return FaultMap(flat[order], np.array([s for *_, s in cells], np.uint8)[order],
                    np.zeros(len(cells)), 0, MAP_GEOMETRY.cells, 0.01, None, 0, "14nm-512x64", MAP_GEOMETRY)


def test_weights_read_the_documented_row_and_columns():
    rows, cols = locate(np.array([0, 15, 16, 17, 255, 256, 511, 8191 * 256, 8192 * 256 + 5]))
    assert rows.tolist() == [0, 0, 0, 0, 0, 1, 1, 8191, 0]
    assert cols.tolist() == [0, 120, 0, 8, 120, 0, 120, 0, 40]


def test_a_hand_checked_map_changes_the_hand_checked_weights():
    # tensor 0: 600 weights of value 0; tensor 1: 20 weights of value -1 (code 0xff)
    q = np.concatenate([np.zeros(600, np.int8), np.full(20, -1, np.int8)])
    offsets = np.array([0, 600, 620])
    fault_map = hand_map([
        (0, 8 * 3 + 2, 1),    # row 0, word 3, bit 2 stuck at 1: 0 -> 4 in tensor 0; -1 unchanged
        (0, 0, 0),            # row 0, word 0, bit 0 stuck at 0: -1 -> -2 in tensor 1; 0 unchanged
        (2, 8 * 15 + 7, 1),   # row 2, word 15, bit 7 stuck at 1: 0 -> -128 for weights 527 + 16k
        (1, 0, 0),            # row 1: read by weights 256.. of tensor 0 only, which hold 0 already
    ])
    index, value, clean, counts = apply_code_faults(fault_map, q, offsets, flip=False)
    expected_0 = {3 + 16 * k: 4 for k in range(16)} | {527 + 16 * k: -128 for k in range(5)}
    expected_1 = {0: -2, 16: -2}
    n0 = counts[0, 2]
    assert dict(zip(index[:n0].tolist(), value[:n0].tolist())) == expected_0
    assert dict(zip(index[n0:].tolist(), value[n0:].tolist())) == expected_1
    assert clean[:n0].tolist() == [0] * n0 and clean[n0:].tolist() == [-1, -1]
    # faulty bits read: tensor 0 reads 16 + 16 + 16 + 5 of them, tensor 1: 2 (row 0 word 3) + 2 (word 0)
    assert counts.tolist() == [[53, 21, 21], [4, 2, 2]]
    flip = apply_code_faults(fault_map, q, offsets, flip=True)
    assert flip[3].tolist() == [[53, 53, 53], [4, 4, 4]]


@pytest.mark.parametrize("flip", [False, True])
def test_faults_match_a_dense_reading_of_the_map(flip):
    """Every weight read through :func:`locate` from a dense copy of a chip's map."""
    rng = np.random.default_rng(0)
    sizes = [432, 5000, 70000]
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    q = rng.integers(-128, 128, offsets[-1]).astype(np.int8)
    fault_map = code_fault_map(5, "14nm-512x64", 0.02)
    faulty, stuck = np.zeros(MAP_GEOMETRY.cells, bool), np.zeros(MAP_GEOMETRY.cells, np.int64)
    faulty[fault_map.cells], stuck[fault_map.cells] = True, fault_map.stuck
    index, value, _, counts = apply_code_faults(fault_map, q, offsets, flip)
    bounds = np.concatenate(([0], np.cumsum(counts[:, 2])))
    for t, n in enumerate(sizes):
        row, col = locate(np.arange(n))
        code = q[offsets[t]:offsets[t + 1]].view(np.uint8).astype(np.int64)
        new = code.copy()
        for j in range(8):
            cell = row * 128 + col + j
            hit = faulty[cell]
            new[hit] = new[hit] ^ (1 << j) if flip else (new[hit] & ~(1 << j)) | (stuck[cell][hit] << j)
        changed = np.flatnonzero(new != code)
        np.testing.assert_array_equal(index[bounds[t]:bounds[t + 1]], changed)   # in index order
        np.testing.assert_array_equal(value[bounds[t]:bounds[t + 1]].view(np.uint8), new[changed])


def constant_model(*sizes: int) -> nn.Module:
    """Linear layers whose weights all quantize to 127 (every weight reads the same clean code)."""
    model = nn.Sequential(*(nn.Linear(n, 1, bias=False) for n in sizes))
    with torch.no_grad():
        for layer in model:
            layer.weight.fill_(0.5)
    return model


def test_the_pattern_repeats_16_times_in_a_256_weight_block_and_wraps_after_the_map():
    model = constant_model(WEIGHTS_PER_MAP + 4096)
    with Deployment(model, layout=CODE).at(ber=0.03, chip=1) as perturbed:
        w = perturbed[0].weight.detach().reshape(-1).clone()
    blocks = w[:WEIGHTS_PER_MAP].reshape(-1, 16, 16)       # (row, repeat, word)
    assert torch.equal(blocks, blocks[:, :1].expand_as(blocks))
    assert not torch.equal(blocks[0, 0], blocks[1, 0])      # rows differ: the pattern is per row
    assert (w != 0.5).float().mean() > 0.05                  # faults are there at all
    assert torch.equal(w[WEIGHTS_PER_MAP:], w[:4096])        # weight 2**21 reads row 0 again


def test_all_layers_share_the_same_leading_faults_and_arrays_do_not():
    model = constant_model(3000, 5000)
    for layout, shared in ((CODE, True), ("arrays", False)):
        with Deployment(model, layout=layout).at(ber=0.02, chip=2) as perturbed:
            first, second = (layer.weight.detach().reshape(-1)[:3000] for layer in perturbed)
            assert torch.equal(first, second) is shared, layout


@pytest.mark.parametrize("fault_model", ["stuck-at", "flip"])
def test_faults_are_nested_across_rates(fault_model):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 300), nn.Linear(300, 10))
    quantized = [quantize(layer.weight.detach(), 8) for layer in model]
    deployment = Deployment(model, fault_model=fault_model, layout=CODE)
    codes = {}
    for ber in (0.005, 0.02):
        with deployment.at(ber=ber, chip=7) as perturbed:
            codes[ber] = [codes_of(layer.weight / s) for layer, (_, s) in zip(perturbed, quantized)]
    clean = [codes_of(q) for q, _ in quantized]
    for low, high, c in zip(codes[0.005], codes[0.02], clean):
        changed_low, changed_high = low ^ c, high ^ c
        assert changed_low.any()
        assert not (changed_low & ~changed_high).any()       # every bit changed at 0.5% is changed at 2%
        assert np.array_equal(low & changed_low, high & changed_low)


def codes_of(q: torch.Tensor) -> np.ndarray:
    """The 8-bit two's-complement codes of integer-valued ``q``."""
    return torch.round(q.detach()).to(torch.int8).reshape(-1).numpy().view(np.uint8)


def test_the_same_seed_gives_the_same_faults_in_another_process():
    code = ("import hashlib; from sramsim.layouts import code_fault_map; "
            "m = code_fault_map(2**40 + 3, '14nm-512x64', 0.01); "
            "print(hashlib.sha256(m.cells.tobytes() + m.stuck.tobytes()).hexdigest())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = code_fault_map(2**40 + 3, "14nm-512x64", 0.01)
    assert len(here) > 0
    assert other.stdout.strip() == hashlib.sha256(here.cells.tobytes() + here.stuck.tobytes()).hexdigest()


def test_deployment_restores_the_weights_and_reports_the_layout():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 600), nn.Linear(600, 10))
    before = [p.detach().clone() for p in model.parameters()]
    deployment = Deployment(model, layout=CODE)
    with deployment.at(ber=0.01, chip=3):
        pass
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    report = deployment.report(ber=0.01, chip=3)
    assert report["layout"] == CODE and "8192x128" in report["layout_semantics"]
    assert (report["array_rows"], report["array_cols"], report["cells"]) == (8192, 128, 2**20)
    assert report["faulty_cells"] == len(code_fault_map(3, "14nm-512x64", 0.01))
    assert report["changed_weights"] == sum(layer["changed_weights"] for layer in report["layers"]) > 0
    assert "layout='neuralfuse-code'" in repr(deployment)
    assert Deployment(model).report(ber=0.01, chip=3)["layout"] == "arrays"
    copy = deploy(model, ber=0.01, chip=3, layout=CODE)
    with deployment.at(ber=0.01, chip=3) as perturbed:
        assert all(torch.equal(a, b) for a, b in zip(copy.parameters(), perturbed.parameters()))


def test_a_chip_alone_and_nested_in_quantized_gives_the_same_weights():
    # alone, the faults are written in the same pass as the quantized weights, chunk by chunk
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(400, 300), nn.Linear(300, 10))
    assert 400 * 300 > CHUNK
    deployment = Deployment(model, layout=CODE)
    with deployment.at(ber=0.02, chip=3):
        alone = [p.detach().clone() for p in model.parameters()]
    with deployment.quantized(), deployment.at(ber=0.02, chip=3):
        assert all(torch.equal(a, b) for a, b in zip(alone, model.parameters()))


def test_bad_layouts_are_refused_with_the_value_named():
    model = nn.Linear(8, 2)
    with pytest.raises(ValueError, match="unknown layout 'rows'.*arrays, neuralfuse-code"):
        Deployment(model, layout="rows")
    with pytest.raises(ValueError, match="8-bit weights only.*bits=4"):
        Deployment(model, bits=4, layout=CODE)
    with pytest.raises(ValueError, match="do not give a geometry"):
        Deployment(model, layout=CODE, geometry=ArrayGeometry(256, 64))
    with pytest.raises(ValueError, match="unknown layout 'rows'"):
        TrainConfig.from_dict({"generator": "UNetS", "ber": 0.01, "layout": "rows"})


# -- run records ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 30 * 30, 10)).eval()
    return model, fixed_subset(load_dataset("default", split="test"), 50)


def test_evaluate_and_sweep_record_the_layout(tiny, tmp_path):
    model, data = tiny
    point = OperatingPoint.resolve(ber=0.03)
    code = MemoryConfig(layout=CODE)
    assert evaluate(model, data, point=point, chips=1, memory=code, latency_repeats=1)["memory"]["layout"] == CODE
    sweep(model, data, [0.85], chips=1, memory=code, out_dir=tmp_path / "s")
    assert json.loads((tmp_path / "s" / "sweep.json").read_text())["memory"]["layout"] == CODE


def test_a_sweep_recorded_before_layouts_resumes_as_arrays(tiny, tmp_path):
    model, data = tiny
    out = tmp_path / "old"
    sweep(model, data, [0.85], chips=1, out_dir=out)
    record = json.loads((out / "sweep.json").read_text())
    memory = record.pop("memory")   # as written before memory configs and layouts: flat, no layout
    record.update(bits=memory["bits"], tech=memory["tech"], fault_model=memory["fault_model"])
    (out / "sweep.json").write_text(json.dumps(record))
    sweep(model, data, [0.85], chips=1, out_dir=out)                  # resumes: same sweep
    with pytest.raises(ValueError, match="memory.layout: 'arrays' before, 'neuralfuse-code' now"):
        sweep(model, data, [0.85], chips=1, memory=MemoryConfig(layout=CODE), out_dir=out)


def test_evaluate_command_takes_layout_and_refuses_bad_values(tmp_path):
    base = str(REPO / "reference" / "resnet18-w025-cifar10.pt")
    runner = CliRunner()
    pa = {}
    for layout in LAYOUTS:
        out = tmp_path / f"run{LAYOUTS.index(layout)}.json"
        result = runner.invoke(cli.main, ["evaluate", "--base", base, "--ber", "0.03", "--chips", "1",
                                          "--samples", "100", "--latency-repeats", "1", "--layout", layout,
                                          "--json", str(out), "--no-progress"])
        assert result.exit_code == 0, result.output
        assert f"{layout} layout" in result.output
        record = json.loads(out.read_text())
        assert record["memory"]["layout"] == layout
        pa[layout] = record["without_nf"]["pa_mean"]
    assert pa["arrays"] != pa[CODE]       # the layout reaches the deployment
    compared = runner.invoke(cli.main, ["compare", str(tmp_path / "run0.json"), str(tmp_path / "run1.json")])
    rows = compared.output.splitlines()
    assert compared.exit_code == 0 and "layout" in rows[0] and CODE not in rows[1] and CODE in rows[2]
    bad = runner.invoke(cli.main, ["evaluate", "--base", base, "--ber", "0.01", "--layout", "rows"])
    assert bad.exit_code == 2 and "'rows' is not one of 'arrays', 'neuralfuse-code'" in bad.output
    four = runner.invoke(cli.main, ["evaluate", "--base", base, "--ber", "0.01", "--bits", "4",
                                    "--samples", "20", "--layout", CODE, "--no-progress"])
    assert four.exit_code == 2 and "8-bit weights only" in four.output and "Traceback" not in four.output


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A 10-class ResNet18 with 1/16 of the channels, saved as a base-model checkpoint."""
    torch.manual_seed(0)
    return save_checkpoint(tmp_path_factory.mktemp("base") / "base.pt",
                           create_model("resnet18", num_classes=10, width=1 / 16).eval(),
                           arch="resnet18", width=1 / 16, num_classes=10, bits=8)


def test_train_and_evaluate_commands_carry_the_layout_from_run_to_evaluation(tmp_path, monkeypatch,
                                                                             tiny_checkpoint):
    base = tiny_checkpoint
    layouts_used, step = [], eopm.eopm_step

    def spy(generator, optimizer, deployments, *args, **kwargs):
        layouts_used.append(deployments[0].layout_name)
        return step(generator, optimizer, deployments, *args, **kwargs)

    monkeypatch.setattr(eopm, "eopm_step", spy)
    run, runner = tmp_path / "run", CliRunner()
    train = ["train", "--base", str(base), "--generator", "UNetS", "--ber", "0.02", "--dataset", "default",
             "--train-subset", "8", "--batch-size", "8", "--epochs", "1", "--chips-per-step", "1", "--val-size", "0",
             "--layout", CODE, "-o", str(run), "--no-progress"]
    result = runner.invoke(cli.main, train)
    assert result.exit_code == 0, result.output
    assert layouts_used == [CODE]
    assert json.loads((run / "config.json").read_text())["config"]["memory"]["layout"] == CODE
    result = runner.invoke(cli.main, ["evaluate", "--base", str(base), "--run", str(run),
                                      "--ber", "0.02", "--chips", "1", "--samples", "20",
                                      "--latency-repeats", "1", "--no-progress"])
    assert result.exit_code == 0, result.output   # the layout defaults to the generator's
    evaluation = run / "evaluation-ber0.02-8bit-stuck-at-neuralfuse-code-14nm-512x64-chips0-0-test-default-20images.json"
    assert json.loads(evaluation.read_text())["memory"]["layout"] == CODE
    bad = runner.invoke(cli.main, [*train[:-3], "-o", str(tmp_path / "four"), "--bits", "4"])
    assert bad.exit_code == 2 and "8-bit weights only" in bad.output


def test_a_training_run_recorded_before_layouts_resumes_as_arrays(tmp_path):
    torch.manual_seed(0)
    base = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 64, 4)).eval()
    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.rand(16, 3, 8, 8, generator=g) * 2 - 1,
                                          torch.randint(0, 4, (16,), generator=g))
    settings = dict(generator="UNetS", ber=0.02, n_chips=1, batch_size=8, max_steps_per_epoch=1, val_size=0)
    eopm.train(tmp_path / "run", TrainConfig(epochs=1, **settings), base, data, progress=False)
    record_file = tmp_path / "run" / "config.json"
    record = json.loads(record_file.read_text())
    memory = record["config"].pop("memory")   # as written before memory configs and layouts: flat, no layout
    record["config"].update(bits=memory["bits"], tech=memory["tech"], fault_model=memory["fault_model"])
    record_file.write_text(json.dumps(record))
    eopm.train(tmp_path / "run", TrainConfig(epochs=2, **settings), base, data, progress=False)
    with pytest.raises(ValueError, match="memory.layout: 'arrays' before, 'neuralfuse-code' now"):
        eopm.train(tmp_path / "run", TrainConfig(epochs=3, memory=MemoryConfig(layout=CODE), **settings), base,
                   data, progress=False)


def test_demo_runs_under_the_authors_layout_and_says_so(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli.main, ["demo", "-o", str(out), "--chips", "1", "--voltages", "1.0",
                                           "--samples", "50", "--layout", CODE, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "neuralfuse-code fault layout" in result.output
    assert json.loads((out / "summary.json").read_text())["memory"]["layout"] == CODE
    assert json.loads((out / "sweep.json").read_text())["memory"]["layout"] == CODE


def test_a_grid_trains_and_evaluates_its_runs_under_the_layout_it_names(tmp_path, tiny_checkpoint):
    from neuralfuse.grid import parse_spec, run_grid

    spec = parse_spec({"base": str(tiny_checkpoint), "dataset": "default",
                       "train": {"generator": "UNetS", "ber": 0.03, "epochs": 1, "batch_size": 8,
                                 "train_subset": 8, "max_steps_per_epoch": 1, "n_chips": 1,
                                 "val_size": 8, "val_chips": 1},
                       "grid": {"layout": [CODE]}, "evaluate": {"chips": 1, "samples": 20}})
    run_grid(spec, tmp_path / "grid")
    (run_dir,) = (tmp_path / "grid" / "runs").iterdir()
    assert json.loads((run_dir / "config.json").read_text())["config"]["memory"]["layout"] == CODE
    (evaluation_path,) = run_dir.glob("evaluation-ber0.03-8bit-stuck-at-neuralfuse-code-*.json")
    evaluation = json.loads(evaluation_path.read_text())
    assert evaluation["memory"]["layout"] == CODE


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_weights_get_the_same_faults_as_cpu_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 600), nn.Linear(600, 10))
    gpu = copy.deepcopy(model).cuda()
    with Deployment(model, layout=CODE).at(ber=0.02, chip=3), Deployment(gpu, layout=CODE).at(ber=0.02, chip=3):
        for cpu_layer, gpu_layer in zip(model, gpu):
            assert torch.equal(cpu_layer.weight, gpu_layer.weight.cpu())
