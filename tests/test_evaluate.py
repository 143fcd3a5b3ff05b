"""Evaluation (CA, PA over chips, RP, latency) and the `train` / `evaluate` commands."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import characterization
from neuralfuse.checkpoint import load_base_model, load_generator, model_fingerprint, save_checkpoint
from neuralfuse.chips import validation_chips
from neuralfuse.cli import main
from neuralfuse.data import base_validation_set, holdout_split, load_dataset
from neuralfuse.evaluation import (accuracy, evaluate, format_table, inherited_memory, latencies_ms,
                                   load_batches, plan_evaluation)
from neuralfuse.generators import create_generator
from neuralfuse.models import create_model
from sramsim import Chip, Deployment, MemoryConfig, OperatingPoint, deploy, load_fault_map
from tiny import fitted_model

SIDE = 8


@pytest.fixture(scope="module")
def setup():
    """A tiny ResNet18 fitted a little to 64 random images (so faults change its answers)."""
    return fitted_model(1 / 16, images=64, steps=15)


def reference_accuracy(model, data, **where) -> float:
    """Accuracy of a perturbed deep copy made by sramsim.deploy (independent of Deployment.at)."""
    return accuracy(deploy(model, **where).eval(), load_batches(data, 16))


def test_accuracies_match_independently_deployed_copies(setup):
    base, data = setup
    point = OperatingPoint.resolve(ber=0.02)
    result = evaluate(base, data, point=point, chips=[3, 7, 11], batch_size=24, latency_repeats=2)
    without = result["without_nf"]
    assert without["ca"] == pytest.approx(reference_accuracy(base, data, ber=0.0, chip=0))
    expected = [reference_accuracy(base, data, ber=0.02, chip=c) for c in (3, 7, 11)]
    assert without["pa_per_chip"] == pytest.approx(expected)
    assert without["pa_mean"] == pytest.approx(np.mean(expected))
    assert without["pa_std"] == pytest.approx(np.std(expected, ddof=1))
    assert result["chips"] == [3, 7, 11] and result["samples"] == 64
    assert result["with_nf"] is None and result["rp"] is None and result["latency_ms"]["base"] > 0


def test_an_identity_generator_changes_nothing(setup):
    base, data = setup
    identity = create_generator("UIP", input_shape=(3, SIDE, SIDE))  # G = tanh(0) = 0
    result = evaluate(base, data, point=OperatingPoint.resolve(ber=0.02), generator=identity,
                      generator_name="UIP", chips=4, latency_repeats=2)
    assert result["with_nf"]["ca"] == result["without_nf"]["ca"]
    assert result["with_nf"]["pa_per_chip"] == result["without_nf"]["pa_per_chip"]
    assert result["rp"] == 0.0 and result["efficiency_ratio"] == 0.0
    assert result["generator"] == {"name": "UIP", "parameters": 3 * SIDE * SIDE}
    assert result["chips"] == [0, 1, 2, 3]  # the evaluation stream
    table = format_table(result)
    assert "+ UIP" in table and "RP = +0.00 points" in table and "BER 2.000%" in table


def test_reduced_precision_and_a_fault_free_point(setup):
    base, data = setup
    result = evaluate(base, data, point=OperatingPoint.resolve(ber=0.0), chips=3, memory=MemoryConfig(bits=4),
                      latency_repeats=2)
    four_bit = reference_accuracy(base, data, ber=0.0, chip=0, bits=4)
    assert result["memory"]["bits"] == 4 and result["without_nf"]["ca"] == pytest.approx(four_bit)
    assert result["without_nf"]["pa_per_chip"] == [four_bit] * 3  # no faults: PA = CA on every chip


def test_robust_storage_is_evaluated_as_deployed_and_recorded(setup):
    base, data = setup
    memory = MemoryConfig(storage="robust")
    point = OperatingPoint.resolve(ber=0.05)
    robust = evaluate(base, data, point=point, chips=[1, 2], memory=memory, latency_repeats=1)
    expected = [reference_accuracy(base, data, ber=0.05, chip=c, memory=memory) for c in (1, 2)]
    assert robust["without_nf"]["pa_per_chip"] == pytest.approx(expected)
    assert robust["memory"] == memory.to_dict() and "8-bit robust weights" in format_table(robust)
    symmetric = evaluate(base, data, point=point, chips=[1, 2], latency_repeats=1)
    assert symmetric["without_nf"]["pa_per_chip"] != robust["without_nf"]["pa_per_chip"]


def test_fault_maps_saved_from_chips_evaluate_exactly_as_those_chips(setup, tmp_path):
    base, data = setup
    n_cells = Deployment(base).layout.n_cells
    for seed in (3, 7):   # saved at 0.80 Vmin; evaluated there and, nested, at a lower rate
        Chip(seed).fault_map(n_cells, voltage=0.80).save(tmp_path / f"chip{seed}.npz")
    maps = [load_fault_map(tmp_path / f"chip{seed}.npz") for seed in (3, 7)]
    for point in (OperatingPoint.resolve(voltage=0.80), OperatingPoint.resolve(ber=0.01)):
        from_maps = evaluate(base, data, point=point, chips=maps, latency_repeats=1)
        from_seeds = evaluate(base, data, point=point, chips=[3, 7], latency_repeats=1)
        assert from_maps["without_nf"]["pa_per_chip"] == from_seeds["without_nf"]["pa_per_chip"]
        assert from_maps["chips"] == [3, 7] and len(from_maps["fault_maps"]) == 2
        assert "fault_maps" not in from_seeds and "2 fault maps," in format_table(from_maps)


@pytest.mark.parametrize("bad, message", [
    ("short", r"fault map covers cells 0\.\.100: the stored weights need cells 0\.\.\d+"),
    ("rate", "holds its faults up to BER 0.01, so it cannot run at BER 0.05"),
    ("twice", "two fault maps carry chip seed 3"),
])
def test_a_fault_map_that_does_not_fit_is_refused_before_any_work(setup, monkeypatch, bad, message):
    base, data = setup
    n_cells = Deployment(base).layout.n_cells
    maps = {"short": [Chip(3).fault_map(100, ber=0.05)], "rate": [Chip(3).fault_map(n_cells, ber=0.01)],
            "twice": [Chip(3).fault_map(n_cells, ber=0.05)] * 2}[bad]
    monkeypatch.setattr("neuralfuse.evaluation.load_batches", lambda *a, **k: pytest.fail("work started"))
    with pytest.raises(ValueError, match=message) as err:
        evaluate(base, data, point=OperatingPoint.resolve(ber=0.05), chips=maps, latency_repeats=1)
    assert "\n" not in str(err.value)


def test_a_command_inherits_the_memory_config_its_runs_recorded():
    old_generator = {"bits": 8, "tech": "14nm-512x64", "fault_model": "flip", "layout": "arrays"}
    robust_base = {"arch": "vgg11", "memory": MemoryConfig(bits=6, storage="robust").to_dict()}
    assert inherited_memory({"g": old_generator}) == MemoryConfig(fault_model="flip")  # symmetric then
    assert inherited_memory({"base.pt": robust_base}) == MemoryConfig(bits=6, storage="robust")
    assert inherited_memory({"base.pt": robust_base}, storage="symmetric", layout=None) == MemoryConfig(bits=6)
    assert inherited_memory({}, bits=4) == MemoryConfig(bits=4)
    code = {"memory": MemoryConfig(layout="neuralfuse-code").to_dict()}
    with pytest.raises(ValueError, match=r"different layouts \(arrays in a, neuralfuse-code in b\): "
                                         r"give one \(--layout\)"):
        inherited_memory({"a": old_generator | {"fault_model": "stuck-at"}, "b": code})
    assert inherited_memory({"a": {}, "b": code}, layout="arrays") == MemoryConfig()


def test_an_evaluation_plan_names_its_images_chips_and_settings(tmp_path):
    point, memory = OperatingPoint.resolve(ber=0.01), MemoryConfig(storage="robust")
    plan = plan_evaluation({}, point=point, memory=memory, chips=3, first_chip=5, samples=30)
    assert plan.chips == [5, 6, 7] and len(plan.images) == 30
    assert plan.settings["chips"] == "chips5-7" and plan.settings["storage"] == "robust"
    assert plan.provenance(base="b.pt") == {"base": "b.pt", "dataset": "default", "data_root": None,
                                            "image_size": None, "split": "test"}
    held = {"dataset": "default", "split": {"val_size": 20, "seed": 1}}
    validation = plan_evaluation(held, point=point, memory=memory, on="validation", chips=2)
    assert validation.chips == validation_chips(2) and len(validation.images) == 20
    fault_map = Chip(4).fault_map(1000, ber=0.02)
    measured = plan_evaluation({}, point=point, memory=memory, fault_maps=[fault_map], samples=10)
    assert measured.chips == [fault_map] and measured.settings["chips"].startswith("maps4-4-")
    for bad, message in ((dict(on="validation", first_chip=2), "--first-chip"),
                         (dict(fault_maps=[fault_map], chips=3), "without a chip count"),
                         (dict(on="validation", fault_maps=[fault_map]), "on test or calibration"),
                         (dict(on="train"), "on='train' is not valid")):
        with pytest.raises(ValueError, match=message):
            plan_evaluation(held, point=point, memory=memory, **bad)


def test_latencies_take_turns_so_a_busy_machine_slows_both_alike():
    calls = []
    forwards = {"base": lambda x: calls.append("base"), "with_nf": lambda x: calls.append("with_nf")}
    latency = latencies_ms(forwards, torch.zeros(1), repeats=4)
    assert calls == ["base", "with_nf"] * 7   # 3 warm-up rounds, then 4 timed
    assert set(latency) == {"base", "with_nf"} and all(t >= 0 for t in latency.values())


def test_operating_point_from_a_voltage_uses_the_characterization():
    point = OperatingPoint.resolve(voltage=0.83)
    assert point.ber == pytest.approx(float(characterization.load(point.tech).ber(0.83)))
    assert "0.830 Vmin" in point.describe()
    steep = characterization.load(point.tech, extrapolate=True)   # a model loaded already is used (0.71 < 0.72)
    below_range = OperatingPoint.resolve(voltage=0.71, voltage_model=steep)
    assert below_range.ber == pytest.approx(float(steep.ber(0.71)))
    with pytest.raises(ValueError, match="exactly one"):
        OperatingPoint.resolve(voltage=0.83, ber=0.01)
    with pytest.raises(ValueError, match="ber=0.7 is not valid"):
        OperatingPoint.resolve(ber=0.7)


# --- the command line ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny base checkpoint and a generator run trained on it for two steps (default dataset)."""
    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    base_path = root / "base.pt"
    save_checkpoint(base_path, create_model("resnet18", width=1 / 16), arch="resnet18", width=1 / 16,
                    num_classes=10, bits=8, dataset="default")
    result = CliRunner().invoke(main, [
        "train", "--base", str(base_path), "--generator", "UNetS", "--ber", "0.01", "--chips-per-step", "2",
        "--epochs", "1", "--max-steps-per-epoch", "2", "--batch-size", "8", "--dataset", "default",
        "--val-size", "16", "--val-chips", "1", "--no-progress", "-o", str(root / "run")])
    assert result.exit_code == 0, result.output
    assert (root / "run" / "learning_curve.png").stat().st_size > 0   # the CLI passes the plot callback
    return base_path, root / "run"


def test_cli_evaluate_prints_a_table_and_writes_json(files, tmp_path):
    base_path, run = files
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(main, [
        "evaluate", "--base", str(base_path), "--run", str(run), "--voltage", "0.83",
        "--chips", "2", "--samples", "40", "--latency-repeats", "2", "--no-progress", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "base model" in result.output and "+ UNetS" in result.output and "RP =" in result.output
    saved = json.loads(out.read_text())
    assert saved["operating_point"]["voltage"] == 0.83 and saved["samples"] == 40
    assert saved["memory"] == MemoryConfig().to_dict() and saved["provenance"]["dataset"] == "default"
    assert saved["rp"] == pytest.approx(saved["with_nf"]["pa_mean"] - saved["without_nf"]["pa_mean"])


def test_cli_evaluate_writes_into_the_run_directory_by_default(files):
    base_path, run = files
    result = CliRunner().invoke(main, [
        "evaluate", "--base", str(base_path), "--run", str(run), "--ber", "0.005", "--bits", "6",
        "--chips", "1", "--samples", "20", "--latency-repeats", "1", "--no-progress"])
    assert result.exit_code == 0, result.output
    name = "evaluation-ber0.005-6bit-stuck-at-arrays-14nm-512x64-chips0-0-test-default-20images.json"
    assert json.loads((run / name).read_text())["memory"]["bits"] == 6


def test_cli_train_and_evaluate_carry_the_storage_format_from_run_to_evaluation(files, tmp_path):
    base_path, _ = files
    run = tmp_path / "robust"
    result = CliRunner().invoke(main, [
        "train", "--base", str(base_path), "--generator", "ConvS", "--ber", "0.02", "--storage", "robust",
        "--chips-per-step", "1", "--epochs", "1", "--max-steps-per-epoch", "1", "--batch-size", "8",
        "--dataset", "default", "--val-size", "0", "--no-progress", "-o", str(run)])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "config.json").read_text())["config"]["memory"]["storage"] == "robust"
    evaluate_args = ["evaluate", "--base", str(base_path), "--run", str(run), "--ber", "0.02",
                     "--chips", "1", "--samples", "20", "--latency-repeats", "1", "--no-progress"]
    for extra in ([], ["--storage", "symmetric"]):   # the run's storage, then the other one beside it
        result = CliRunner().invoke(main, [*evaluate_args, *extra])
        assert result.exit_code == 0, result.output
    robust, symmetric = (run / f"evaluation-ber0.02-8bit-{part}stuck-at-arrays-14nm-512x64-chips0-0-test-default-"
                         "20images.json" for part in ("robust-", ""))
    assert json.loads(robust.read_text())["memory"]["storage"] == "robust"
    assert json.loads(symmetric.read_text())["memory"]["storage"] == "symmetric"
    assert "8-bit robust weights" in CliRunner().invoke(main, [*evaluate_args]).output


@pytest.mark.parametrize("args, message", [
    (["--ber", "0.01", "--voltage", "0.83"], "exactly one of --voltage and --ber"),
    ([], "exactly one of --voltage and --ber"),
    (["--voltage", "0.2"], "--voltage"),
    (["--ber", "0.01", "--base", "missing.pt"], "does not exist"),
    (["--ber", "0.01", "--run", "no-such-run"], "does not exist"),
])
def test_cli_evaluate_bad_input_is_a_one_line_error(files, tmp_path, args, message):
    base_path, _ = files
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(main, ["evaluate", "--base", str(base_path), "--samples", "8",
                                       "--json", str(out), *args])
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_cli_evaluate_refuses_a_run_without_generator_or_for_another_base(files, tmp_path):
    base_path, run = files
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["evaluate", "--base", str(base_path), "--run",
                                       str(tmp_path / "empty"), "--ber", "0.01"])
    assert result.exit_code == 2 and "no generator.pt" in result.output
    other = tmp_path / "other.pt"
    save_checkpoint(other, create_model("resnet18", width=1 / 16), arch="resnet18", width=1 / 16,
                    num_classes=10)
    result = CliRunner().invoke(main, ["evaluate", "--base", str(other), "--run", str(run),
                                       "--ber", "0.01"])
    assert result.exit_code == 2 and "trained for another base model" in result.output


@pytest.mark.parametrize("change, message", [
    ({"--ber": None}, "exactly one of --voltage and --ber"),
    ({"--voltage": "0.83"}, "exactly one of --voltage and --ber"),
    ({"--generator": "UNetXL"}, "unknown generator 'UNetXL'"),
    ({"--lambda": "-1"}, "--lambda"),
    ({"--base": "missing.pt"}, "does not exist"),
])
def test_cli_train_bad_input_is_a_one_line_error(files, tmp_path, change, message):
    base_path, _ = files
    options = {"--base": str(base_path), "--generator": "UNetS", "--ber": "0.01", "--dataset": "default",
               "-o": str(tmp_path / "run"), **change}
    args = ["train", *[item for key, value in options.items() if value is not None for item in (key, value)]]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_cli_train_resumes_a_finished_run_and_refuses_other_settings(files):
    base_path, run = files
    again = ["train", "--base", str(base_path), "--generator", "UNetS", "--ber", "0.01", "--chips-per-step", "2",
             "--epochs", "1", "--max-steps-per-epoch", "2", "--batch-size", "8", "--dataset", "default",
             "--val-size", "16", "--val-chips", "1", "--no-progress", "-o", str(run)]
    result = CliRunner().invoke(main, again)
    assert result.exit_code == 0 and "generator.pt" in result.output
    result = CliRunner().invoke(main, [*again[:-2], "--lambda", "1", "-o", str(run)])
    assert result.exit_code == 2 and "lam: 5.0 before, 1.0 now" in result.output


def test_cli_train_fine_tunes_a_generator_of_the_same_architecture(files, tmp_path):
    base_path, run = files
    args = ["train", "--base", str(base_path), "--ber", "0.01", "--chips-per-step", "2", "--epochs", "1",
            "--max-steps-per-epoch", "1", "--batch-size", "8", "--dataset", "default", "--val-size", "0",
            "--lr-schedule", "cosine", "--no-progress", "--init-run", str(run)]
    result = CliRunner().invoke(main, [*args, "--generator", "UNetL", "-o", str(tmp_path / "wrong")])
    assert result.exit_code == 2 and "holds a UNetS generator, not a UNetL" in result.output
    assert not (tmp_path / "wrong").exists()
    result = CliRunner().invoke(main, [*args, "--generator", "UNetS", "-o", str(tmp_path / "tuned")])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "tuned" / "config.json").read_text())
    assert record["provenance"]["init_generator"] == str(run.resolve())
    assert record["init_fingerprint"] == model_fingerprint(load_generator(run)[0])
    assert record["config"]["lr_schedule"] == "cosine"


def test_cli_compare_puts_evaluations_side_by_side(files, tmp_path):
    base_path, run = files
    alone = tmp_path / "alone.json"
    common = ["--base", str(base_path), "--ber", "0.02", "--chips", "2", "--samples", "30",
              "--latency-repeats", "1", "--no-progress"]
    for extra in (["--run", str(run)], ["--json", str(alone)]):
        result = CliRunner().invoke(main, ["evaluate", *common, *extra])
        assert result.exit_code == 0, result.output
    table_path = tmp_path / "compare.csv"
    result = CliRunner().invoke(main, ["compare", str(run), str(alone), "--csv", str(table_path)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(table_path).set_index("label")
    settings = "ber0.02-8bit-stuck-at-arrays-14nm-512x64-chips0-1-test-default-30images"
    evaluated = json.loads((run / f"evaluation-{settings}.json").read_text())
    row = table.loc[f"run {settings}"]
    assert row["nf_pa_mean"] == pytest.approx(evaluated["with_nf"]["pa_mean"])
    assert row["rp"] == pytest.approx(evaluated["rp"]) and row["generator"] == "UNetS"
    assert pd.isna(table.loc["alone", "rp"]) and table.loc["alone", "point"] == "BER 2.000%"
    assert "UNetS" in result.output and "alone" in result.output


def test_cli_compare_over_seeds_groups_runs_that_differ_only_in_their_seed(files, tmp_path):
    base_path, run = files
    common = ["evaluate", "--base", str(base_path), "--ber", "0.02", "--chips", "2", "--samples", "30",
              "--latency-repeats", "1", "--no-progress"]
    for extra in (["--run", str(run)], ["--json", str(tmp_path / "alone.json")]):
        result = CliRunner().invoke(main, [*common, *extra])
        assert result.exit_code == 0, result.output
    name = "evaluation-ber0.02-8bit-stuck-at-arrays-14nm-512x64-chips0-1-test-default-30images.json"

    def copy_run(to: str, rp: float, init: str | None = None, **settings) -> Path:
        (tmp_path / to).mkdir()   # the record and this one evaluation, not the others the run holds
        record = json.loads((run / "config.json").read_text())
        record["config"].update(settings)
        record["init_fingerprint"] = init
        (tmp_path / to / "config.json").write_text(json.dumps(record))
        evaluated = json.loads((run / name).read_text())
        (tmp_path / to / name).write_text(json.dumps({**evaluated, "rp": rp}))
        return tmp_path / to

    runs = [copy_run("s0", 10.0, seed=0), copy_run("s1", 14.0, seed=1, epochs=9),
            copy_run("s2", 15.0, seed=2), copy_run("lam1", 3.0, seed=0, lam=1.0),
            copy_run("tuned", 16.0, init="f1ab", seed=0)]   # fine-tuned from another generator
    csv = tmp_path / "seeds.csv"
    result = CliRunner().invoke(main, ["compare", *map(str, runs), str(tmp_path / "alone.json"), "--over-seeds",
                                       "--csv", str(csv)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(csv)
    assert list(table["n_seeds"]) == [3, 1, 1, 1] and table["seeds"][0] == "0, 1, 2"
    seeds = table.iloc[0]
    assert seeds["rp"] == pytest.approx(13.0) and seeds["rp_sd"] == pytest.approx(np.std([10, 14, 15], ddof=1))
    assert (seeds["rp_min"], seeds["rp_max"]) == (10.0, 15.0) and "lam=5.0" in seeds["recipe"]
    assert table.iloc[1]["rp"] == 3.0 and "lam=1.0" in table.iloc[1]["recipe"]
    assert table.iloc[2]["rp"] == 16.0 and "fine_tune=True" in table.iloc[2]["recipe"]
    assert "fine_tune" not in seeds["recipe"]
    assert table.iloc[3]["runs"] == "alone" and pd.isna(table.iloc[3]["recipe"])
    assert seeds["ca_drop"] == pytest.approx(seeds["ca"] - seeds["nf_ca"])
    assert "+13.00 ± 2.65 (+10.00 to +15.00)" in result.output


@pytest.mark.parametrize("content, message", [
    ('{"rp": 1}', "not an evaluation result"), ("not json", "not an evaluation result")])
def test_cli_compare_rejects_files_that_are_not_evaluations(tmp_path, content, message):
    path = tmp_path / "x.json"
    path.write_text(content)
    result = CliRunner().invoke(main, ["compare", str(path)])
    assert result.exit_code == 2 and message in result.output
    empty = CliRunner().invoke(main, ["compare", str(tmp_path / "..")])
    assert empty.exit_code == 2 and "holds no evaluation-*.json" in empty.output


def test_cli_evaluate_on_validation_uses_the_held_out_images_and_validation_chips(files, tmp_path):
    base_path, run = files
    held_out = tmp_path / "held-out.pt"
    model, meta = load_base_model(base_path)
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version")}
    save_checkpoint(held_out, model, **{**meta, "split": {"val_size": 30, "seed": 4}})
    out = tmp_path / "val.json"
    args = ["evaluate", "--base", str(held_out), "--ber", "0.02", "--chips", "2", "--latency-repeats", "1",
            "--no-progress", "--json", str(out)]
    result = CliRunner().invoke(main, [*args, "--on", "validation"])
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert saved["chips"] == validation_chips(2) and saved["samples"] == 30
    assert saved["provenance"]["split"] == "validation"
    train_set = load_dataset("default", split="train")
    images = base_validation_set(train_set, {**meta, "split": {"val_size": 30, "seed": 4}})
    assert torch.equal(images.images, train_set.images[holdout_split(len(train_set), 30, 4)[1]])
    refused = CliRunner().invoke(main, [*args[:2], str(base_path), *args[3:], "--on", "validation"])
    assert refused.exit_code == 2 and "holds out no validation images of 'default'" in refused.output
    refused = CliRunner().invoke(main, [*args, "--on", "validation", "--first-chip", "3"])
    assert refused.exit_code == 2 and "--first-chip" in refused.output


# --- nothing a user runs is lost ----------------------------------------------------------------

def _evaluate(base_path, *extra: str):
    return CliRunner().invoke(main, ["evaluate", "--base", str(base_path), "--ber", "0.02", "--chips", "1",
                                     "--latency-repeats", "1", "--no-progress", *extra])


def test_cli_evaluate_a_quick_check_keeps_the_full_evaluation_and_compare_tells_them_apart(files, tmp_path):
    base_path, source = files
    run = tmp_path / "run"
    run.mkdir()
    for name in ("config.json", "generator.pt"):
        (run / name).write_bytes((source / name).read_bytes())
    for samples in ("40", "20"):
        result = _evaluate(base_path, "--run", str(run), "--samples", samples)
        assert result.exit_code == 0, result.output
    saved = sorted(run.glob("evaluation-*.json"))
    assert [json.loads(p.read_text())["samples"] for p in saved] == [20, 40]
    result = CliRunner().invoke(main, ["compare", str(run)])
    assert result.exit_code == 0, result.output
    assert "samples" in result.output.splitlines()[0] and "dataset" not in result.output.splitlines()[0]


def test_result_file_names_every_setting():
    from neuralfuse.result_files import evaluation_settings, result_file

    base = dict(point=OperatingPoint.resolve(ber=0.01), memory=MemoryConfig(), chips=range(10), samples=2000,
                split="test", dataset="default")
    memory = MemoryConfig()
    changes = [dict(samples=30), dict(chips=range(3, 13)), dict(chips=range(5)), dict(split="validation"),
               dict(dataset="cifar10"), dict(image_size=32), dict(memory=memory.replace(bits=6)),
               dict(memory=memory.replace(fault_model="flip")), dict(memory=memory.replace(layout="neuralfuse-code")),
               dict(memory=memory.replace(storage="robust")), dict(point=OperatingPoint.resolve(voltage=0.83)),
               dict(chips=range(10), fault_maps=[f"{i:016x}" for i in range(10)]), dict(precision="bf16")]
    names = {result_file("run", evaluation_settings(**{**base, **change})).name for change in [{}, *changes]}
    assert len(names) == len(changes) + 1
    robust = result_file("run", evaluation_settings(**{**base, "memory": memory.replace(storage="robust")})).name
    assert robust == "evaluation-ber0.01-8bit-robust-stuck-at-arrays-14nm-512x64-chips0-9-test-default-2000images.json"


def test_cli_evaluate_refuses_a_file_made_with_other_settings_unless_overwrite(files, tmp_path):
    base_path, _ = files
    out = tmp_path / "eval.json"
    assert _evaluate(base_path, "--samples", "20", "--json", str(out)).exit_code == 0
    full = out.read_text()
    result = _evaluate(base_path, "--samples", "10", "--json", str(out))
    assert result.exit_code == 2 and "other settings (samples 20images -> 10images)" in result.output
    assert "--overwrite" in result.output and out.read_text() == full
    assert _evaluate(base_path, "--samples", "20", "--json", str(out)).exit_code == 0   # same settings: fine
    result = _evaluate(base_path, "--samples", "10", "--json", str(out), "--overwrite")
    assert result.exit_code == 0 and json.loads(out.read_text())["samples"] == 10
    notes = tmp_path / "notes.json"
    notes.write_text("my notes")
    result = _evaluate(base_path, "--samples", "10", "--json", str(notes))
    assert result.exit_code == 2 and "is not an evaluation result" in result.output
    assert notes.read_text() == "my notes"


def test_cli_evaluate_does_not_write_into_the_installed_package_by_default():
    from neuralfuse.shipped import SETUPS

    setup = SETUPS["resnet18-w0.25"]
    before = sorted(setup.folder.rglob("*"))
    result = _evaluate(setup.base, "--run", str(setup.generator_run), "--samples", "8")
    assert result.exit_code == 2 and "inside the installed neuralfuse package" in result.output
    assert "--json PATH" in result.output and sorted(setup.folder.rglob("*")) == before


def test_cli_compare_reads_the_evaluations_saved_before_settings_named_files():
    reference = Path(__file__).resolve().parents[1] / "reference"
    result = CliRunner().invoke(main, ["compare", str(reference / "neuralfuse" / "unetl-ft-cos-lam2"),
                                       str(reference / "eval-ber0.03.json")])
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert "layout" in header and "first_chip" in header and "samples" not in header and len(rows) == 6
    assert "neuralfuse-code" in result.output and "eval-ber0.03" in result.output


@pytest.mark.parametrize("content", [b"hello\n", "npz"])
def test_cli_a_file_that_is_no_checkpoint_as_base_is_one_clear_line(tmp_path, content):
    path = tmp_path / "not-a-model.bin"
    if content == "npz":
        np.savez(path.with_suffix(".npz"), cell_index=np.arange(3))
        path = path.with_suffix(".npz")
    else:
        path.write_bytes(content)
    result = _evaluate(path)
    assert result.exit_code == 2 and "not a checkpoint written by torch.save" in result.output
    assert "enforce" not in result.output and "(101)" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error:")
