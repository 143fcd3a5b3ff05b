"""The main job, `neuralfuse demo`, on the shipped assets."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from click.testing import CliRunner

from neuralfuse.cli import main
from neuralfuse.demo import NF, format_summary, summarize
from neuralfuse.shipped import DEFAULT_SETUP
from neuralfuse.tradeoff import BASE



def demo(tmp_path, *args):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "-o", str(out), "--no-progress", *args])
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.mark.parametrize("setup, criteria", [(None, ()), ("resnet18-w0.25", ("mean", "yield:0.95"))])
def test_quick_demo_writes_table_plots_and_summary(tmp_path, setup, criteria):
    chosen = [] if setup is None else ["--setup", setup]
    chosen += [arg for criterion in criteria for arg in ("--criterion", criterion)]
    out, output = demo(tmp_path, *chosen, "--chips", "2", "--voltages", "0.9:1.0:0.05", "--samples", "200")
    assert str(out) in output
    table = pd.read_csv(out / "sweep.csv", keep_default_na=False)
    summary = json.loads((out / "summary.json").read_text())
    v = summary["operating_point"]["voltage"]
    assert sorted(table.voltage.unique()) == sorted({0.9, 0.95, 1.0, v})
    assert set(table.config) == {BASE, NF}
    for name in ("pareto", "accuracy", "curves"):
        assert (out / f"{name}.png").stat().st_size > 1000 and (out / f"{name}.svg").is_file()
    row = table[(table.voltage == v) & (table.config == NF)].iloc[0]
    assert summary["with_nf"]["pa_mean"] == pytest.approx(row.pa_mean)
    assert summary["rp"] == pytest.approx(summary["with_nf"]["pa_mean"] - summary["without_nf"]["pa_mean"])
    assert summary["setup"] == (setup or DEFAULT_SETUP) and summary["samples"] == 200
    text = (out / "summary.txt").read_text()
    assert f"{v:.3f} Vmin" in text and "recovery RP" in text and text.strip() in output
    assert text.splitlines()[2].startswith("At an accuracy floor of ")  # the answer comes first
    assert list(dict.fromkeys(f["criterion"] for f in summary["floors"])) == list(criteria or ["mean"])
    assert ("floor (95% yield)" in text) == ("yield:0.95" in criteria)
    if setup is not None:   # the small setup ships no robust model: no "which protection" table
        assert "which_protection" not in summary and not (out / "robust").exists()
        return
    protection, lead = summary["which_protection"], next(f for f in summary["floors"] if f["lead"])
    assert [s["name"] for s in protection["strategies"]] == ["base model alone", "with NeuralFuse",
                                                             "GN VGG11, clipping 0.1 + RandBET"]
    assert protection["floor"] == lead["min_accuracy"] and protection["robust_base"] == "robust.pt"
    alone = protection["strategies"][0]["energy_saving"]["mean"]
    assert alone == (None if lead["without_nf"] is None else pytest.approx(lead["without_nf"]["energy_saving"]))
    robust = pd.read_csv(out / "robust" / "sweep.csv")
    assert sorted(robust.voltage, reverse=True) == protection["scanned_voltages"]
    assert set(robust.voltage) <= set(table.voltage)
    assert f"which protection at {lead['min_accuracy']:.2f}% PA" in text


def test_demo_stores_the_weights_in_the_format_asked_and_says_so(tmp_path):
    out, output = demo(tmp_path, "--setup", "resnet18-w0.25", "--storage", "robust", "--chips", "1",
                       "--voltages", "1.0", "--samples", "50")
    assert "robust storage, arrays fault layout" in output
    assert json.loads((out / "summary.json").read_text())["memory"]["storage"] == "robust"
    assert json.loads((out / "sweep.json").read_text())["memory"]["storage"] == "robust"


def test_demo_refuses_a_bad_criterion(tmp_path):
    result = CliRunner().invoke(main, ["demo", "-o", str(tmp_path / "d"), "--criterion", "quantile:1.5"])
    assert result.exit_code == 2 and "quantile level=1.5 is not valid" in result.output
    assert not (tmp_path / "d").exists()


def test_demo_refuses_an_unknown_setup(tmp_path):
    result = CliRunner().invoke(main, ["demo", "-o", str(tmp_path / "d"), "--setup", "resnet50"])
    assert result.exit_code == 2 and "resnet50" in result.output and "vgg11" in result.output
    assert not (tmp_path / "d").exists()


def test_demo_refuses_an_output_that_is_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    result = CliRunner().invoke(main, ["demo", "-o", str(target), "--no-progress"])
    assert result.exit_code == 2 and "is a file" in result.output


def test_demo_refuses_voltages_outside_the_technology(tmp_path):
    result = CliRunner().invoke(main, ["demo", "-o", str(tmp_path / "d"), "--voltages", "0.6:1.0:0.1"])
    assert result.exit_code == 2 and "outside the characterized range" in result.output
    assert not (tmp_path / "d").exists()


def test_summary_compares_the_margin_with_the_chip_to_chip_error():
    per_chip = pd.DataFrame([(config, 0.8, chip, pa) for config, values in
                             ((BASE, [40.0, 50.0, 60.0]), (NF, [70.0, 72.0, 74.0]))
                             for chip, pa in enumerate(values)], columns=["config", "voltage", "chip", "pa"])
    stats = per_chip.groupby("config").pa.agg(["mean", "std"])
    table = pd.DataFrame({"config": [BASE, NF], "voltage": 0.8, "ber": 0.03, "chips": 3,
                          "ca": [80.0, 78.0], "pa_mean": stats.loc[[BASE, NF], "mean"].to_numpy(),
                          "pa_std": stats.loc[[BASE, NF], "std"].to_numpy(),
                          "energy_saving": [0.36, 0.30], "accesses_base": 1000.0,
                          "accesses_generator": [0.0, 260.0]})
    table["pa_sem"] = table.pa_std / math.sqrt(3)
    summary = summarize(table, per_chip, 0.8)
    assert summary["rp"] == pytest.approx(22.0)
    assert summary["margin_standard_error"] == pytest.approx(math.hypot(10 / math.sqrt(3), 2 / math.sqrt(3)))
    assert summary["paired_standard_error"] == pytest.approx(8 / math.sqrt(3))  # std of (30, 22, 14)
    assert summary["beats"]
    assert summary["generator_access_overhead"] == pytest.approx(0.26)
    assert summary["pareto_front"] == {BASE: [0.8], NF: [0.8]}  # one voltage: both points survive
    close = per_chip.assign(pa=per_chip.pa.where(per_chip.config == BASE, per_chip.pa - 18))
    stats = close.groupby("config").pa.mean()
    summary = summarize(table.assign(pa_mean=stats.loc[[BASE, NF]].to_numpy()), close, 0.8)
    assert not summary["beats"]  # a 4-point margin is within 5.9 points of standard error


@pytest.mark.slow
def test_full_demo_neuralfuse_beats_the_base(tmp_path):
    """The full main job (its wall time is measured by bench/bench_demo.py, not asserted here)."""
    out, output = demo(tmp_path)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["beats"], format_summary(summary)
    assert summary["rp"] > summary["margin_standard_error"]


def test_summary_leads_with_the_energy_saved_at_each_accuracy_floor():
    table = pd.DataFrame({"config": [BASE, BASE, NF, NF], "voltage": [1.0, 0.8, 1.0, 0.8],
                          "ber": [1e-6, 0.03, 1e-6, 0.03], "chips": 3, "ca": [80.0, 80.0, 78.0, 78.0],
                          "pa_mean": [80.0, 50.0, 78.0, 72.0], "pa_std": 2.0, "pa_sem": 1.0,
                          "energy_saving": [0.0, 0.36, -0.03, 0.30], "accesses_base": 1000.0,
                          "accesses_generator": [0.0, 0.0, 30.0, 30.0]})
    per_chip = pd.DataFrame([(config, 0.8, chip, pa + chip - 1) for config, pa in ((BASE, 50.0), (NF, 72.0))
                             for chip in range(3)], columns=["config", "voltage", "chip", "pa"])
    summary = summarize(table, per_chip, 0.8, min_accuracy=72.0)
    floors = {f["min_accuracy"]: f for f in summary["floors"]}
    assert sorted(floors) == [60.0, 70.0, 72.0, 75.0, 78.0]  # CA - 20, 10, 5, 2 and the lead
    assert [f["min_accuracy"] for f in summary["floors"] if f["lead"]] == [72.0]
    assert floors[78.0]["without_nf"]["voltage"] == 1.0 and floors[78.0]["with_nf"]["voltage"] == 1.0
    assert floors[72.0]["without_nf"]["energy_saving"] == 0.0
    assert floors[72.0]["with_nf"] == {"voltage": 0.8, "ber": 0.03, "pa_mean": 72.0, "pa_std": 2.0,
                                       "energy_saving": 0.30}
    assert summarize(table.assign(pa_mean=[80.0, 50.0, 50.0, 50.0]), per_chip, 0.8)["floors"][0]["with_nf"] is None
    details = {"setup": "vgg11", "description": "d", "samples": 10, "layout": "arrays", "output": "out",
               "generator": {"architecture": "UNetS", "trained_at": 0.8, "command": "c"}}
    text = format_summary({**summary, **details})
    assert text.splitlines()[2] == (
        "At an accuracy floor of 72.0% (mean PA; the base model's CA minus 8.0 points), the weight memory "
        "saves 0.0% at 1.000 Vmin with the base model alone, and saves 30.0% at 0.800 Vmin with NeuralFuse "
        "(energy against Vmin).")
    dearer = {**floors[72.0], "with_nf": {**floors[72.0]["with_nf"], "energy_saving": -0.05}}
    assert "costs 5.0% more at 0.800 Vmin with NeuralFuse" in format_summary({**summary, **details,
                                                                             "floors": [dearer]})
