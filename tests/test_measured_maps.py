"""Fault-map files as chips: load_fault_map, Deployment.at(fault_map=...) and --fault-map."""
import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from neuralfuse import cli as neuralfuse_cli
from neuralfuse.checkpoint import load_base_model
from neuralfuse.data import fixed_subset, load_dataset
from neuralfuse.evaluation import evaluate
from sramsim import Chip, Deployment, FaultMap, MemoryConfig, OperatingPoint, deploy, load_fault_map
from sramsim.array import ArrayGeometry
from sramsim.cli import main
from tiny import save_tiny_checkpoint, sweep_args, tiny_model
from sramsim.layouts import code_fault_map
from sramsim.mapfile import stream_fault_map


def small_model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 6 * 6, 96), nn.ReLU(),
                         nn.Linear(96, 10)).eval()


def weights_at(deployment: Deployment, **where) -> list[torch.Tensor]:
    with deployment.at(**where) as model:
        return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("storage, fault_model, bits", [("symmetric", "stuck-at", 8), ("robust", "flip", 5),
                                                        ("robust", "stuck-at", 3)])
def test_a_saved_chip_map_deploys_exactly_as_the_chip(tmp_path, storage, fault_model, bits):
    model = small_model()
    deployment = Deployment(model, memory=MemoryConfig(bits=bits, storage=storage, fault_model=fault_model))
    chip = Chip(7)
    chip.fault_map(deployment.layout.n_cells, voltage=0.84).save(tmp_path / "chip7.npz", fault_model)
    fault_map = load_fault_map(tmp_path / "chip7.npz")
    expected = weights_at(deployment, voltage=0.84, chip=chip)
    got = weights_at(deployment, fault_map=fault_map)
    assert any(not torch.equal(a, b) for a, b in zip(got, [p.detach() for p in model.parameters()]))
    for a, b in zip(expected, got):
        assert torch.equal(a.view(torch.int32), b.view(torch.int32))
    report, from_map = deployment.report(voltage=0.84, chip=chip), deployment.report(fault_map=fault_map)
    assert from_map == report and report["changed_weights"] > 0
    with deployment.quantized():   # nested, as the chip is
        assert all(torch.equal(a, b) for a, b in zip(weights_at(deployment, fault_map=fault_map), expected))


def test_a_map_from_the_faultmap_command_and_a_larger_streamed_one_deploy_as_the_chip(tmp_path):
    deployment = Deployment(small_model())
    arrays = deployment.layout.n_arrays
    out = tmp_path / "cli.npz"
    result = CliRunner().invoke(main, ["faultmap", "--voltage", "0.83", "--chip", "3", "--arrays",
                                       str(arrays), "-o", str(out)])
    assert result.exit_code == 0, result.output
    stream_fault_map(tmp_path / "big.npz", Chip(3), (arrays + 3) * 512 * 64, voltage=0.83, chunk_arrays=2)
    expected = weights_at(deployment, voltage=0.83, chip=3)
    for path in (out, tmp_path / "big.npz"):
        got = weights_at(deployment, fault_map=load_fault_map(path))
        assert all(torch.equal(a, b) for a, b in zip(expected, got))
    assert deployment.report(fault_map=load_fault_map(tmp_path / "big.npz"))["faulty_cells"] == \
        deployment.report(voltage=0.83, chip=3)["faulty_cells"]


def test_the_neuralfuse_code_layout_takes_its_own_map(tmp_path):
    deployment = Deployment(small_model(), memory=MemoryConfig(layout="neuralfuse-code", storage="robust"))
    code_fault_map(4, deployment.tech, 0.01).save(tmp_path / "map.npz")
    got = weights_at(deployment, fault_map=load_fault_map(tmp_path / "map.npz"))
    assert all(torch.equal(a, b) for a, b in zip(weights_at(deployment, ber=0.01, chip=4), got))
    arrays_map = Chip(4).fault_map(Deployment(small_model()).layout.n_cells, ber=0.01)
    with pytest.raises(ValueError, match="512x64-cell arrays does not fit layout 'neuralfuse-code'.*8192x128"):
        deployment.report(fault_map=arrays_map)


def test_a_map_that_does_not_cover_the_weights_is_refused(tmp_path):
    deployment = Deployment(small_model())
    n_cells = deployment.layout.n_cells
    with pytest.raises(ValueError, match=rf"covers cells 0..{n_cells - 1}: the stored weights need cells 0..{n_cells}"):
        deployment.report(fault_map=Chip(1).fault_map(n_cells - 1, ber=0.01))
    with pytest.raises(ValueError, match=rf"covers cells 5..{n_cells + 5}"):
        deployment.report(fault_map=Chip(1).fault_map(n_cells, ber=0.01, start=5))
    small = Chip(1, geometry=ArrayGeometry(64, 64)).fault_map(10**6, ber=0.01)
    with pytest.raises(ValueError, match="64x64-cell arrays does not fit layout 'arrays' here: it needs 512x64"):
        deployment.report(fault_map=small)
    other = Chip(1, tech=_other_tech()).fault_map(n_cells, ber=0.01)
    with pytest.raises(ValueError, match="fault map of tech .* does not match"):
        deployment.report(fault_map=other)
    with pytest.raises(ValueError, match="give fault_map= alone"):
        deployment.report(fault_map=Chip(1).fault_map(n_cells, ber=0.01), chip=1)
    with pytest.raises(ValueError, match="give chip="):
        deployment.report(ber=0.01)


def _other_tech() -> str:
    from characterization import DEFAULT_TECH, list_technologies
    others = [t for t in list_technologies() if t != DEFAULT_TECH]
    if not others:
        pytest.skip("only one shipped technology")
    return others[0]


def test_files_that_are_not_maps_get_a_one_line_error(tmp_path):
    text, checkpoint, array = tmp_path / "notes.txt", tmp_path / "model.pt", tmp_path / "cells.npy"
    text.write_text("cell,stuck\n1,0\n")
    torch.save({"state_dict": small_model().state_dict()}, checkpoint)
    np.save(array, np.arange(5))
    Chip(2).fault_map(1000, ber=0.1).save(tmp_path / "map.npz")
    with np.load(tmp_path / "map.npz") as npz:
        keys = dict(npz)
    np.savez(tmp_path / "unsorted.npz", **{**keys, "cell_index": keys["cell_index"][::-1].copy()})
    np.savez(tmp_path / "partial.npz", **{k: v for k, v in keys.items() if k != "stuck_value"})
    for path, why in ((text, "not an .npz archive"), (checkpoint, "keys cell_index, .* are missing"),
                      (array, "not an .npz archive"), (tmp_path / "unsorted.npz", "increasing"),
                      (tmp_path / "partial.npz", "keys stuck_value are missing"),
                      (tmp_path / "nothing.npz", "no such file")):
        with pytest.raises(ValueError, match=f"^not a fault-map file: .*{path.name} \\(.*{why}") as err:
            load_fault_map(path)
        assert "\n" not in str(err.value)


def test_a_loaded_map_keeps_the_files_contents(tmp_path):
    fault_map = Chip(5).fault_map(50_000, voltage=0.85, start=1000)
    fault_map.save(tmp_path / "m.npz")
    loaded = FaultMap.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.cells, fault_map.cells)
    np.testing.assert_array_equal(loaded.stuck, fault_map.stuck)
    np.testing.assert_allclose(loaded.hazard, fault_map.hazard, rtol=1e-12)
    assert (loaded.start, loaded.n_cells, loaded.ber, loaded.voltage, loaded.seed, loaded.tech, loaded.geometry) == \
        (1000, 50_000, fault_map.ber, 0.85, 5, fault_map.tech, fault_map.geometry)
    assert len(loaded.restrict(fault_map.ber / 2)) < len(loaded)


def test_deploy_takes_a_map():
    model = small_model()
    n_cells = Deployment(small_model()).layout.n_cells
    perturbed = deploy(model, fault_map=Chip(3).fault_map(n_cells, ber=0.02))
    expected = deploy(model, ber=0.02, chip=3)
    assert all(torch.equal(a, b) for a, b in zip(perturbed.parameters(), expected.parameters()))


# --- measured chips on the neuralfuse command line --------------------------------------------

@pytest.fixture(scope="module")
def tiny_chips(tmp_path_factory):
    """The tiny checkpoint and the maps of chips 0, 1 and 5 at 0.80 Vmin, as `sramsim faultmap` writes them."""
    folder = tmp_path_factory.mktemp("chips")
    base = save_tiny_checkpoint(folder / "tiny.pt")
    arrays = Deployment(tiny_model()).layout.n_arrays
    for seed in (0, 1, 5):
        result = CliRunner().invoke(main, ["faultmap", "--voltage", "0.80", "--chip", str(seed), "--arrays",
                                           str(arrays), "-o", str(folder / f"chip{seed}.npz")])
        assert result.exit_code == 0, result.output
    return base, folder


def neuralfuse(*args: str):
    return CliRunner().invoke(neuralfuse_cli.main, list(args))


def test_cli_evaluate_on_the_map_of_chip_k_gives_the_pa_of_chip_k(tiny_chips, tmp_path):
    base, folder = tiny_chips
    args = ["evaluate", "--base", str(base), "--samples", "40", "--latency-repeats", "1", "--no-progress"]
    result = neuralfuse(*args, "--fault-map", str(folder / "chip5.npz"), "--json", str(tmp_path / "map.json"))
    assert result.exit_code == 0, result.output   # at the map's own point, 0.80 Vmin
    assert "0.800 Vmin" in result.output and "1 fault map," in result.output
    result = neuralfuse(*args, "--voltage", "0.8", "--chips", "1", "--first-chip", "5", "--json",
                        str(tmp_path / "seed.json"))
    assert result.exit_code == 0, result.output
    on_map, on_seed = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("map", "seed"))
    assert on_map["without_nf"]["pa_per_chip"] == on_seed["without_nf"]["pa_per_chip"]
    assert on_map["chips"] == [5] and len(on_map["fault_maps"]) == 1
    assert on_map["provenance"]["fault_maps"] == [str((folder / "chip5.npz").resolve())]

    maps = [arg for seed in (0, 5) for arg in ("--fault-map", str(folder / f"chip{seed}.npz"))]
    result = neuralfuse(*args, *maps, "--ber", "0.01", "--json", str(tmp_path / "lower.json"))
    assert result.exit_code == 0, result.output   # nested: the maps at a lower rate
    model, _ = load_base_model(base)
    expected = evaluate(model, fixed_subset(load_dataset("default", split="test"), 40),
                        point=OperatingPoint.resolve(ber=0.01), chips=[0, 5], latency_repeats=1)
    assert json.loads((tmp_path / "lower.json").read_text())["without_nf"]["pa_per_chip"] == \
        expected["without_nf"]["pa_per_chip"]


def test_cli_sweep_on_the_maps_of_chips_0_and_1_is_the_sweep_of_those_chips(tiny_chips, tmp_path):
    base, folder = tiny_chips
    maps = [arg for seed in (0, 1) for arg in ("--fault-map", str(folder / f"chip{seed}.npz"))]
    voltages = ("--voltages", "0.80,0.9,1.0")
    result = neuralfuse("sweep", "--base", str(base), *voltages, "--samples", "40", "--no-progress",
                        "-o", str(tmp_path / "maps"), *maps)
    assert result.exit_code == 0, result.output
    result = neuralfuse(*sweep_args(base, tmp_path / "seeds", *voltages))   # chips 0 and 1
    assert result.exit_code == 0, result.output
    on_maps, on_seeds = (pd.read_csv(tmp_path / name / "chips.csv") for name in ("maps", "seeds"))
    pd.testing.assert_frame_equal(on_maps, on_seeds)
    assert len(json.loads((tmp_path / "maps" / "sweep.json").read_text())["fault_maps"]) == 2


@pytest.mark.parametrize("bad, message", [
    ("short", "fault map covers cells 0..32768: the stored weights need cells"),
    ("code", "fault map of 8192x128-cell arrays does not fit layout 'arrays'"),
    ("text", "not a fault-map file: "),
    ("low", "holds its faults up to BER"),
    ("count", "give them without a chip count"),
])
def test_cli_a_map_that_does_not_fit_is_refused_in_one_line_before_any_work(tiny_chips, tmp_path, monkeypatch,
                                                                             bad, message):
    base, folder = tiny_chips
    path = tmp_path / "bad.npz"
    if bad == "short":
        Chip(5).fault_map(512 * 64, voltage=0.80).save(path)
    elif bad == "code":
        Chip(5, geometry=ArrayGeometry(8192, 128)).fault_map(8192 * 128, voltage=0.80).save(path)
    elif bad == "text":
        path.write_text("cell,stuck\n1,0\n")
    else:
        path = folder / "chip5.npz"
    extra = {"low": ["--voltages", "0.76,1.0"], "count": ["--chips", "3"]}.get(bad, [])
    monkeypatch.setattr("neuralfuse.evaluation.load_batches", lambda *a, **k: pytest.fail("work started"))
    out = tmp_path / "sweep"
    result = neuralfuse("sweep", "--base", str(base), "--voltages", "0.8,1.0", "--samples", "40", *extra,
                        "--fault-map", str(path), "--no-progress", "-o", str(out))
    assert result.exit_code == 2 and message in result.output, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and not out.exists()
    if bad != "low":
        evaluated = neuralfuse("evaluate", "--base", str(base), "--samples", "40", *extra, "--fault-map",
                               str(path), "--no-progress")
        assert evaluated.exit_code == 2 and message in evaluated.output, evaluated.output
