"""Voltage sweeps, Pareto fronts and the `sweep` / `pareto` commands."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from torch.utils.data import TensorDataset

import characterization
from neuralfuse import tradeoff
from neuralfuse.checkpoint import save_checkpoint
from neuralfuse.chips import validation_chips
from neuralfuse.cli import main
from neuralfuse.plots import write_sweep_plots
from neuralfuse.data import fixed_subset
from neuralfuse.tradeoff import (SWEEP_COLUMNS, SweepError, operating_points, pareto_front,
                                 parse_bers, parse_voltages, sweep)
from sramsim import Chip, Deployment, MemoryConfig, load_fault_map
from sramsim.accounting import energy_saving
from tiny import Shift, save_tiny_checkpoint, sweep_args, tiny_model

VOLTAGES = (1.0, 0.85, 0.72)


@pytest.fixture(scope="module")
def setup():
    """The tiny model and inputs labelled with its own fault-free predictions (CA = 100%), so
    faults can only cost accuracy."""
    model = tiny_model()
    x = torch.rand(48, 3, 8, 8, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with Deployment(model).quantized(), torch.inference_mode():
        y = model(x).argmax(1)
    return model, TensorDataset(x, y), Shift().eval()


def run(setup, out_dir=None, voltages=VOLTAGES, **kwargs):
    model, data, generator = setup
    options = dict(generators={"shift": generator}, chips=4, out_dir=out_dir)
    return sweep(model, data, voltages, **{**options, **kwargs})


@pytest.fixture(scope="module")
def swept(setup, tmp_path_factory):
    """One uninterrupted sweep: (its table, its folder)."""
    out = tmp_path_factory.mktemp("swept") / "sweep"
    return run(setup, out), out


# --- voltage lists -------------------------------------------------------------------------------

def test_parse_voltages_range_and_list():
    assert parse_voltages("0.80:1.00:0.05") == (1.0, 0.95, 0.9, 0.85, 0.8)
    assert parse_voltages("0.80:0.90:0.04") == (0.88, 0.84, 0.8)  # the stop is kept only if hit
    assert parse_voltages(" 0.9, 0.83,1.0,0.9") == (1.0, 0.9, 0.83)
    assert len(parse_voltages("0.75:1.00:0.01")) == 26


@pytest.mark.parametrize("text, message", [
    ("1.0:0.8:0.01", "reversed"), ("0.8:1.0:0", "positive step"), ("0.8:1.0:-0.1", "positive step"),
    ("", "empty"), (" , ", "empty"), ("0.8:1.0", "not a voltage range"), ("abc", "not a voltage range"),
    ("0.9,-0.1", "positive"),
])
def test_parse_voltages_rejects(text, message):
    with pytest.raises(ValueError, match=message):
        parse_voltages(text)


def test_parse_bers_reads_the_same_syntax_lowest_first():
    assert parse_bers("0.01:0.03:0.01") == (0.01, 0.02, 0.03)
    assert parse_bers("0.05, 0.01,0.02,0.01") == (0.01, 0.02, 0.05)
    for text, message in (("0.6", r"in \(0, 0.5\]"), ("0", r"in \(0, 0.5\]"), ("0.03:0.01:0.01", "BER range"),
                          ("x", "not a BER range")):
        with pytest.raises(ValueError, match=message):
            parse_bers(text)


# --- Pareto front and operating points -----------------------------------------------------------

def hand_made_table() -> pd.DataFrame:
    rows = [("base", 1.00, 0.00, 90.0, 1.0), ("base", 0.90, 0.19, 85.0, 2.0), ("base", 0.80, 0.36, 40.0, 9.0),
            ("nf", 1.00, -0.05, 88.0, 1.0), ("nf", 0.90, 0.14, 84.0, 1.0), ("nf", 0.80, 0.31, 82.0, 3.0)]
    return pd.DataFrame(rows, columns=["config", "voltage", "energy_saving", "pa_mean", "pa_std"]).assign(
        ber=0.01, ca=90.0)


def test_pareto_front_keeps_only_undominated_points():
    table = hand_made_table()
    front = table[pareto_front(table)]
    assert set(zip(front.config, front.voltage)) == {("base", 1.0), ("base", 0.9), ("base", 0.8),
                                                      ("nf", 0.8)}
    # a duplicate point does not dominate its twin
    twins = pd.DataFrame({"energy_saving": [0.1, 0.1], "pa_mean": [5.0, 5.0]})
    assert pareto_front(twins).all()


def test_operating_points_pick_the_lowest_energy_above_the_threshold():
    result = operating_points(hand_made_table(), 80.0)
    assert result["per_config"]["base"]["voltage"] == 0.9
    assert result["per_config"]["nf"]["voltage"] == 0.8
    assert result["best"]["config"] == "nf"
    stricter = operating_points(hand_made_table(), 86.0)
    assert stricter["per_config"]["nf"]["voltage"] == 1.0 and stricter["best"]["config"] == "base"
    none = operating_points(hand_made_table(), 95.0)
    assert none["per_config"] == {"base": None, "nf": None} and none["best"] is None
    json.dumps(result)  # plain values
    with pytest.raises(ValueError, match="min_accuracy"):
        operating_points(hand_made_table(), 120.0)


# --- the sweep ---------------------------------------------------------------------------------

def test_sweep_table(swept):
    table, out = swept
    assert tuple(table.columns) == SWEEP_COLUMNS
    assert len(table) == 2 * len(VOLTAGES)
    assert list(table.config.unique()) == ["base", "shift"]
    assert (table.chips == 4).all()
    tech = characterization.load(characterization.DEFAULT_TECH)
    np.testing.assert_allclose(table.ber, tech.ber(table.voltage.to_numpy()))
    base = table[table.config == "base"].set_index("voltage")
    assert (base.ca == 100.0).all()
    assert np.isclose(base.pa_std / 2, base.pa_sem).all()  # sem = std / sqrt(4 chips)
    # energy: the base model alone saves nothing at Vmin; the generator costs its accesses there
    assert base.loc[1.0, "energy_saving"] == 0.0 and base.loc[1.0, "energy_relative"] == 1.0
    shift = table[table.config == "shift"].set_index("voltage")
    assert (shift.accesses_generator > 0).all() and (base.accesses_generator == 0).all()
    expected = energy_saving(shift.accesses_base, shift.accesses_generator, shift.index.to_numpy())
    np.testing.assert_allclose(shift.energy_saving, expected)
    np.testing.assert_allclose(shift.energy_relative, 1 - shift.energy_saving)
    saved = pd.read_csv(out / "sweep.csv", keep_default_na=False)
    pd.testing.assert_frame_equal(saved, table, check_dtype=False)
    chips = pd.read_csv(out / "chips.csv")
    assert len(chips) == 2 * len(VOLTAGES) * 4


def test_accuracy_falls_with_voltage_in_expectation(setup):
    table = run(setup, chips=6, generators={})
    for _, rows in table.groupby("config"):
        pa = rows.sort_values("voltage", ascending=False).pa_mean.to_numpy()
        assert np.all(np.diff(pa) <= 1.0), pa  # non-increasing, up to sampling noise
        assert pa[0] - pa[-1] > 30, pa


def test_interrupted_sweep_resumes_to_the_same_table(setup, swept, tmp_path, monkeypatch):
    whole, whole_dir = swept
    calls = {"n": 0}
    measure = tradeoff.chip_accuracies

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return measure(*args, **kwargs)

    monkeypatch.setattr(tradeoff, "chip_accuracies", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(setup, tmp_path / "resumed")
    assert len(list((tmp_path / "resumed" / "points").glob("v*.json"))) == 5
    assert not (tmp_path / "resumed" / "sweep.csv").exists()

    calls["n"] = -100  # no more interruptions; count what the rerun computes
    resumed = run(setup, tmp_path / "resumed")
    assert calls["n"] == -100 + len(VOLTAGES) * 4 - 5
    pd.testing.assert_frame_equal(resumed, whole)
    assert (tmp_path / "resumed" / "sweep.csv").read_text() == (whole_dir / "sweep.csv").read_text()


def test_a_sweep_extended_with_a_generator_measures_only_it(setup, swept, tmp_path, monkeypatch):
    run(setup, tmp_path / "sweep", generators={})   # the base model alone first
    measured_sets = []
    measure = tradeoff.chip_accuracies

    def counted(deployment, point, chips, input_sets, **kwargs):
        measured_sets.append(len(input_sets))
        return measure(deployment, point, chips, input_sets, **kwargs)

    monkeypatch.setattr(tradeoff, "chip_accuracies", counted)
    extended = run(setup, tmp_path / "sweep")          # now with "shift"
    assert measured_sets == [1] * (len(VOLTAGES) * 4)  # each point measured once, for "shift" only
    pd.testing.assert_frame_equal(extended, swept[0])  # as if both had been swept together
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())["generators"].keys() == {"shift"}

    with pytest.raises(SweepError, match="holds shift: give them again"):
        run(setup, tmp_path / "sweep", generators={})
    other = Shift().eval()
    with torch.no_grad():
        other.net.weight.mul_(2)
    with pytest.raises(SweepError, match="shift is another model now"):
        run(setup, tmp_path / "sweep", generators={"shift": other})


def test_a_sweep_extended_with_voltages_measures_only_them(setup, swept, tmp_path, monkeypatch):
    run(setup, tmp_path / "sweep", VOLTAGES[:2])   # 1.0 and 0.85 first
    measured = []
    measure = tradeoff.chip_accuracies

    def counted(deployment, point, chips, input_sets, **kwargs):
        measured.append(point.voltage)
        return measure(deployment, point, chips, input_sets, **kwargs)

    monkeypatch.setattr(tradeoff, "chip_accuracies", counted)
    extended = run(setup, tmp_path / "sweep")       # all three
    assert measured == [VOLTAGES[2]] * 4            # only the new voltage, on each of the 4 chips
    pd.testing.assert_frame_equal(extended, swept[0])
    assert (tmp_path / "sweep" / "sweep.csv").read_text() == (swept[1] / "sweep.csv").read_text()
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())["voltages"] == list(VOLTAGES)
    with pytest.raises(SweepError, match="extend only with more voltages \\(it holds 0.72: give them again\\)"):
        run(setup, tmp_path / "sweep", VOLTAGES[:2])


def test_sweep_folder_with_other_arguments_is_refused(setup, swept, tmp_path):
    with pytest.raises(SweepError, match="chips"):
        run(setup, swept[1], chips=3)
    (tmp_path / "file").write_text("x")
    with pytest.raises(SweepError, match="not a sweep folder"):
        run(setup, tmp_path / "file")


def test_a_sweep_records_its_memory_config_and_never_resumes_another(setup, tmp_path):
    robust = MemoryConfig(storage="robust")
    stored = run(setup, tmp_path / "robust", generators={}, memory=robust)
    plain = run(setup, generators={})
    assert stored.pa_mean.tolist() != plain.pa_mean.tolist()   # the storage format reaches the chips
    assert json.loads((tmp_path / "robust" / "sweep.json").read_text())["memory"] == robust.to_dict()
    with pytest.raises(SweepError, match="memory.storage: 'robust' before, 'symmetric' now"):
        run(setup, tmp_path / "robust", generators={})


def test_a_sweep_recorded_before_memory_configs_resumes_under_its_flat_settings(setup, tmp_path, monkeypatch):
    out = tmp_path / "old"
    table = run(setup, out, generators={}, chips=2)
    record = json.loads((out / "sweep.json").read_text())
    memory = record.pop("memory")
    record.update(bits=memory["bits"], tech=memory["tech"], fault_model=memory["fault_model"])   # no layout, storage
    (out / "sweep.json").write_text(json.dumps(record))
    monkeypatch.setattr(tradeoff, "chip_accuracies", lambda *a, **k: pytest.fail("measured again"))
    pd.testing.assert_frame_equal(run(setup, out, generators={}, chips=2), table)
    with pytest.raises(SweepError, match="memory.bits: 8 before, 6 now"):
        run(setup, out, generators={}, chips=2, memory=MemoryConfig(bits=6))


def test_a_sweep_on_fault_maps_is_the_sweep_on_their_chips(setup, tmp_path):
    n_cells = Deployment(setup[0]).layout.n_cells
    for seed in (0, 1):   # measured at the lowest voltage, so every swept voltage is nested in it
        Chip(seed).fault_map(n_cells, voltage=min(VOLTAGES)).save(tmp_path / f"chip{seed}.npz")
    maps = [load_fault_map(tmp_path / f"chip{seed}.npz") for seed in (0, 1)]
    on_maps = run(setup, tmp_path / "maps", chips=maps)
    pd.testing.assert_frame_equal(on_maps, run(setup, chips=2))
    record = json.loads((tmp_path / "maps" / "sweep.json").read_text())
    assert record["chips"] == [0, 1] and len(record["fault_maps"]) == 2
    pd.testing.assert_frame_equal(run(setup, tmp_path / "maps", chips=maps), on_maps)   # resumes
    with pytest.raises(SweepError, match="fault_maps"):
        run(setup, tmp_path / "maps", chips=2)   # simulated chips are other chips
    high = [Chip(0).fault_map(n_cells, voltage=0.85)]
    with pytest.raises(ValueError, match="cannot run at BER"):
        run(setup, tmp_path / "high", chips=high)
    assert not (tmp_path / "high").exists()   # refused before any work


def test_sweep_rejects_bad_arguments(setup):
    with pytest.raises(characterization.OutOfRangeError, match="0.5"):
        sweep(setup[0], setup[1], (0.9, 0.5))
    with pytest.raises(ValueError, match="base"):
        sweep(setup[0], setup[1], (0.9,), generators={"base": setup[2]})
    with pytest.raises(ValueError, match="give exactly one of voltages and bers"):
        sweep(setup[0], setup[1], (0.9,), bers=(0.01,))
    with pytest.raises(ValueError, match="split='train' is not valid"):
        sweep(setup[0], setup[1], (0.9,), split="train")
    with pytest.raises(ValueError, match="samples"):
        fixed_subset(setup[1], 1000)


def test_fixed_subset_is_fixed_and_spread():
    data = TensorDataset(torch.arange(1000))
    a, b = fixed_subset(data, 100), fixed_subset(data, 100)
    assert a.indices == b.indices and len(set(a.indices)) == 100
    assert max(a.indices) > 900  # not just the first samples


def test_plots_are_written(swept, tmp_path):
    paths = write_sweep_plots(swept[0], tmp_path, characterization.DEFAULT_TECH)
    assert sorted(p.name for p in paths) == sorted(f"{n}.{e}" for n in ("pareto", "accuracy", "curves")
                                                   for e in ("png", "svg"))
    assert all(p.stat().st_size > 1000 for p in paths)


# --- command line --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def generator_runs(checkpoint, tmp_path_factory):
    """Two one-step generator runs for the tiny checkpoint: under the arrays layout and the authors'."""
    root = tmp_path_factory.mktemp("runs")
    for name, extra in (("arrays", []), ("code", ["--layout", "neuralfuse-code"])):
        result = CliRunner().invoke(main, [
            "train", "--base", str(checkpoint), "--generator", "ConvS", "--ber", "0.02", "--dataset", "default",
            "--train-subset", "8", "--batch-size", "8", "--epochs", "1", "--chips-per-step", "1", "--val-size", "0",
            *extra, "-o", str(root / name), "--no-progress"])
        assert result.exit_code == 0, result.output
    return root / "arrays", root / "code"


def test_cli_sweep_with_robust_storage_differs_from_symmetric_and_records_it(checkpoint, tmp_path):
    runner, low = CliRunner(), ("--voltages", "0.76,1.0")
    for storage in ("symmetric", "robust"):
        result = runner.invoke(main, sweep_args(checkpoint, tmp_path / storage, *low, "--storage", storage))
        assert result.exit_code == 0, result.output
    pa = {storage: pd.read_csv(tmp_path / storage / "chips.csv").pa.tolist() for storage in ("symmetric", "robust")}
    assert pa["symmetric"] != pa["robust"]
    assert json.loads((tmp_path / "robust" / "sweep.json").read_text())["memory"]["storage"] == "robust"
    refused = runner.invoke(main, sweep_args(checkpoint, tmp_path / "robust", *low))   # the base's: symmetric
    assert refused.exit_code == 2 and "memory.storage: 'robust' before, 'symmetric' now" in refused.output


def test_cli_sweep_takes_the_memory_config_its_generators_were_trained_with(checkpoint, generator_runs, tmp_path):
    arrays, code = generator_runs
    runner = CliRunner()
    result = runner.invoke(main, sweep_args(checkpoint, tmp_path / "code", "--run", str(code)))
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "code" / "sweep.json").read_text())["memory"]["layout"] == "neuralfuse-code"
    both = ("--run", str(arrays), "--run", str(code))
    mixed = runner.invoke(main, sweep_args(checkpoint, tmp_path / "mixed", *both))
    assert mixed.exit_code == 2 and "trained with different layouts (arrays in" in mixed.output
    assert "give one (--layout)" in mixed.output and not (tmp_path / "mixed").exists()
    chosen = runner.invoke(main, sweep_args(checkpoint, tmp_path / "chosen", *both, "--layout", "arrays"))
    assert chosen.exit_code == 0, chosen.output
    assert json.loads((tmp_path / "chosen" / "sweep.json").read_text())["memory"]["layout"] == "arrays"


def test_cli_sweep_and_pareto(checkpoint, tmp_path):
    runner = CliRunner()
    out = tmp_path / "sweep"
    result = runner.invoke(main, sweep_args(checkpoint, out))
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "sweep.csv")
    assert list(table.voltage) == [1.0, 0.9] and (table.chips == 2).all()
    record = json.loads((out / "sweep.json").read_text())
    assert record["chips"] == [0, 1] and record["provenance"]["samples"] == 40
    assert record["command"].startswith("neuralfuse") and "torch" in record["versions"]
    assert (out / "pareto.png").is_file() and (out / "curves.svg").is_file()

    again = runner.invoke(main, sweep_args(checkpoint, out))  # all points done: nothing to compute
    assert again.exit_code == 0, again.output
    assert pd.read_csv(out / "sweep.csv").equals(table)

    result = runner.invoke(main, ["pareto", str(out), "--min-accuracy", "0"])
    assert result.exit_code == 0, result.output
    assert "best overall: base at" in result.output
    saved = json.loads((out / "pareto.json").read_text())
    assert saved["min_accuracy"] == 0 and saved["best"]["voltage"] == 0.9


@pytest.mark.parametrize("change, hint", [
    (("--voltages", ""), "empty"),
    (("--voltages", "1.0:0.9:0.01"), "reversed"),
    (("--voltages", "0.5:1.0:0.1"), "outside the characterized range"),
    (("--base", "missing.pt"), "does not exist"),
    (("--chips", "0"), "--chips"),
])
def test_cli_sweep_bad_input_is_a_one_line_error(checkpoint, tmp_path, change, hint):
    args = sweep_args(checkpoint, tmp_path / "out")
    option, value = change
    args[args.index(option) + 1] = value
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and hint in errors[0], result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_cli_output_that_is_a_file_is_refused(checkpoint, tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me")
    result = CliRunner().invoke(main, sweep_args(checkpoint, target))
    assert result.exit_code == 2 and "is a file" in result.output
    assert target.read_text() == "keep me"


def test_cli_pareto_needs_a_finished_sweep(tmp_path):
    result = CliRunner().invoke(main, ["pareto", str(tmp_path), "--min-accuracy", "50"])
    assert result.exit_code == 2 and "no finished sweep" in result.output


@pytest.mark.slow
def test_killed_sweep_command_resumes_to_the_same_table(checkpoint, tmp_path):
    """SIGKILL a real `neuralfuse sweep` process mid-way, rerun the command, compare."""
    def args(out):
        command = sweep_args(checkpoint, tmp_path / out)
        command[command.index("--chips") + 1] = "30"  # long enough to be killed half-way
        return command

    process = subprocess.Popen([sys.executable, "-c", "from neuralfuse.cli import main; main()", *args("killed")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    points = tmp_path / "killed" / "points"
    deadline = time.monotonic() + 120
    while len(list(points.glob("v*.json"))) < 5 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.kill()
    process.wait()
    assert not (tmp_path / "killed" / "sweep.csv").exists(), "the sweep finished before it was killed"
    done = len(list(points.glob("v*.json")))
    assert 5 <= done < 60

    runner = CliRunner()
    for out in ("killed", "whole"):
        result = runner.invoke(main, args(out))
        assert result.exit_code == 0, result.output
    assert (tmp_path / "killed" / "sweep.csv").read_text() == (tmp_path / "whole" / "sweep.csv").read_text()
    assert not list(points.glob(".*"))  # no temporary file left behind


@pytest.fixture(scope="module")
def held_out_checkpoint(tmp_path_factory):
    """The tiny model as a checkpoint that holds out 40 images of the default training split."""
    path = tmp_path_factory.mktemp("held-out") / "tiny.pt"
    return save_checkpoint(path, tiny_model(), arch="resnet18", width=1 / 16, num_classes=10, bits=8,
                           dataset="default", split={"val_size": 40, "seed": 4})


def ber_sweep_args(checkpoint, out, *extra: str) -> list[str]:
    """:func:`sweep_args` over the BERs 1% and 5% instead of voltages."""
    args = sweep_args(checkpoint, out, *extra)
    at = args.index("--voltages")
    return [*args[:at], "--bers", "0.01,0.05", *args[at + 2:]]


def test_cli_ber_sweep_on_chosen_chips_and_images(held_out_checkpoint, tmp_path):
    runner = CliRunner()
    out = tmp_path / "bers"
    result = runner.invoke(main, ber_sweep_args(held_out_checkpoint, out, "--first-chip", "3"))
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "sweep.csv")
    assert list(table.ber) == [0.01, 0.05]  # faults at exactly these BERs ...
    tech = characterization.load(characterization.DEFAULT_TECH)
    np.testing.assert_allclose(table.voltage, tech.voltage_at_ber(np.array([0.01, 0.05])))  # ... at their voltages
    record = json.loads((out / "sweep.json").read_text())
    assert record["bers"] == [0.01, 0.05] and record["chips"] == [3, 4] and record["split"] == "test"
    assert sorted(p.name for p in (out / "points").glob("ber*")) == [
        f"ber{b:.10f}-chip{c}.json" for b in (0.01, 0.05) for c in (3, 4)]

    voltage_sweep = runner.invoke(main, sweep_args(held_out_checkpoint, out, "--first-chip", "3"))
    assert voltage_sweep.exit_code == 2 and "holds a BER sweep (give --bers): a rerun may add bers to it, " \
        "not change the axis" in voltage_sweep.output
    other_chips = runner.invoke(main, ber_sweep_args(held_out_checkpoint, out))
    assert other_chips.exit_code == 2 and "chips: [3, 4] before, [0, 1] now" in other_chips.output
    denser = [("0.01,0.03,0.05" if a == "0.01,0.05" else a)
              for a in ber_sweep_args(held_out_checkpoint, out, "--first-chip", "3")]
    assert runner.invoke(main, denser).exit_code == 0                  # a BER sweep takes more BERs
    assert list(pd.read_csv(out / "sweep.csv").ber) == [0.01, 0.03, 0.05]

    validation = runner.invoke(main, [*sweep_args(held_out_checkpoint, tmp_path / "val"), "--on", "validation"])
    assert validation.exit_code == 0, validation.output
    record = json.loads((tmp_path / "val" / "sweep.json").read_text())
    assert record["chips"] == validation_chips(2) and record["split"] == "validation"
    assert record["data_fingerprint"] != json.loads((out / "sweep.json").read_text())["data_fingerprint"]
    both = runner.invoke(main, [*sweep_args(held_out_checkpoint, tmp_path / "x"), "--bers", "0.01"])
    assert both.exit_code == 2 and "give exactly one of --voltages and --bers" in both.output
    first = runner.invoke(main, [*sweep_args(held_out_checkpoint, tmp_path / "x"), "--on", "validation",
                                 "--first-chip", "2"])
    assert first.exit_code == 2 and "--first-chip picks evaluation chips" in first.output
    plain = save_tiny_checkpoint(tmp_path / "plain.pt")  # holds out no images
    no_split = runner.invoke(main, [*sweep_args(plain, tmp_path / "x"), "--on", "validation"])
    assert no_split.exit_code == 2 and "holds out no validation images of 'default'" in no_split.output
    assert not (tmp_path / "x").exists()


def test_cli_pareto_with_a_criterion_and_per_chip_voltage(held_out_checkpoint, tmp_path):
    runner = CliRunner()
    test_dir, calibration = tmp_path / "test", tmp_path / "calibration"
    assert runner.invoke(main, sweep_args(held_out_checkpoint, test_dir)).exit_code == 0
    result = runner.invoke(main, [*sweep_args(held_out_checkpoint, calibration), "--on", "calibration"])
    assert result.exit_code == 0, result.output
    assert json.loads((calibration / "sweep.json").read_text())["chips"] == [0, 1]

    result = runner.invoke(main, ["pareto", str(test_dir), "--min-accuracy", "0", "--criterion", "yield:1",
                                  "--per-chip-from", str(calibration)])
    assert result.exit_code == 0, result.output
    assert "with 100% yield >= 0% (yield:1)" in result.output
    assert "2 of 2 chips keep 0% on test; yield:1 kept on test" in result.output
    saved = json.loads((test_dir / "pareto.json").read_text())
    assert saved["criterion"] == "yield:1" and saved["best"]["voltage"] == 0.9
    assert saved["per_chip"]["configs"][0]["chips"] == 2
    chips = pd.read_csv(test_dir / "per-chip.csv")
    assert list(chips.chip) == [0, 1] and (chips.voltage == 0.9).all() and chips.calibrated.all()

    wrong = runner.invoke(main, ["pareto", str(test_dir), "--min-accuracy", "0", "--per-chip-from", str(test_dir)])
    assert wrong.exit_code == 2 and "holds a sweep on test images; per-chip voltage needs one on validation" \
        in wrong.output
    bad = runner.invoke(main, ["pareto", str(test_dir), "--min-accuracy", "0", "--criterion", "quantile:1"])
    assert bad.exit_code == 2 and "quantile level=1.0 is not valid: use a fraction in (0, 1)" in bad.output
