"""Strategy comparisons (neuralfuse.strategies): energy saved per floor and criterion, per-chip
voltage, the paired bootstrap over chips, refusals, the report files and the spec."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neuralfuse.criteria import parse_criterion
from neuralfuse.strategies import (TABLE_COLUMNS, Bootstrap, Strategy, StrategyError, compare_strategies)
from neuralfuse.strategy_report import (FILES, format_comparison, format_which_protection, which_protection,
                                        write_comparison)
from neuralfuse.strategy_spec import StrategySpecError, load_spec, parse_spec
from neuralfuse.tradeoff import SWEEP_COLUMNS, operating_points

CHIPS = 10
VOLTAGES = (1.0, 0.9, 0.8, 0.7)
SAVING = {1.0: 0.0, 0.9: 0.19, 0.8: 0.35, 0.7: 0.5}
# PA (%) of chips 0..9 at each voltage.
MARGIN = {1.0: [90.0] * 10,                   # CA 90: the reference
          0.9: [85.0] * 10,
          0.8: [85.0] * 8 + [75.0, 70.0],     # mean 83.5, worst 70
          0.7: [90.0] * 5 + [70.0] * 5}       # mean 80, worst 70
ROBUST = {1.0: [89.0] * 10,
          0.9: [88.0] * 10,
          0.8: [86.0] * 9 + [79.0],           # mean 85.3, worst 79
          0.7: [60.0] * 10}
ROBUST_VALIDATION = {1.0: [89.0] * 10,        # each chip's own voltage at 80%: chips 0-1 at 0.7, the rest at 0.8
                     0.9: [88.0] * 10,
                     0.8: [86.0] * 9 + [81.0],
                     0.7: [80.0, 80.0] + [60.0] * 8}
PER_CHIP_ENERGY = 1 - (2 * 0.5 + 8 * 0.65) / 10   # 0.38; test PA 60, 60, 86 x 7, 79: mean 80.1, worst 60


def write_sweep(folder: Path, configs: dict[str, dict[float, list[float]]], *, split: str = "test",
                chips: list[int] | None = None, accesses: float = 1000.0, saving: dict[str, dict] | None = None,
                **record) -> Path:
    """A finished sweep folder as `neuralfuse sweep` writes it (sweep.json, sweep.csv, chips.csv)."""
    chips = list(range(CHIPS)) if chips is None else chips
    folder.mkdir(parents=True)
    rows, per_chip = [], []
    for config, by_voltage in configs.items():
        for voltage, pa in by_voltage.items():
            energy = (saving or {}).get(config, SAVING)[voltage]
            rows.append({"config": config, "generator": "" if config == "base" else "UNetS", "voltage": voltage,
                         "ber": 0.01 * (1 - voltage), "chips": len(pa), "ca": by_voltage[1.0][0],
                         "pa_mean": float(np.mean(pa)), "pa_std": float(np.std(pa, ddof=1)), "pa_sem": 0.0,
                         "accesses_base": accesses, "accesses_generator": 0.0, "energy_relative": 1 - energy,
                         "energy_saving": energy})
            per_chip += [{"config": config, "voltage": voltage, "chip": c, "pa": p} for c, p in zip(chips, pa)]
    pd.DataFrame(rows, columns=list(SWEEP_COLUMNS)).to_csv(folder / "sweep.csv", index=False)
    pd.DataFrame(per_chip).to_csv(folder / "chips.csv", index=False)
    (folder / "sweep.json").write_text(json.dumps({
        "format": "neuralfuse.sweep", "voltages": list(configs["base"]), "split": split, "chips": chips,
        "tech": "14nm-512x64", "fault_model": "stuck-at", "layout": "arrays", "bits": 8,
        "base_fingerprint": "margin" if configs["base"] is MARGIN else "robust",
        "data_fingerprint": "validation-images" if split == "validation" else "test-images",
        "generators": {name: {"architecture": "UNetS", "fingerprint": name} for name in configs if name != "base"},
        "provenance": {"samples": 1000}, **record}))
    return folder


@pytest.fixture
def sweeps(tmp_path):
    """The reference model with a second configuration ("cheap": the same PA for 5 points less
    energy), a robust model and the robust model's calibration sweep."""
    cheap = {v: s + 0.05 for v, s in SAVING.items()}
    return {"margin": write_sweep(tmp_path / "margin", {"base": MARGIN, "cheap": MARGIN},
                                  saving={"cheap": cheap}),
            "robust": write_sweep(tmp_path / "robust", {"base": ROBUST}),
            "calibration": write_sweep(tmp_path / "robust-cal", {"base": ROBUST_VALIDATION}, split="validation")}


def strategies(sweeps) -> list[Strategy]:
    return [Strategy("margin", sweeps["margin"]), Strategy("robust", sweeps["robust"]),
            Strategy("robust per chip", sweeps["robust"], calibration=sweeps["calibration"])]


def row(comparison, strategy: str, criterion: str, floor: float) -> pd.Series:
    table = comparison.table
    found = table[(table.strategy == strategy) & (table.criterion == criterion) & (table.floor == floor)]
    assert len(found) == 1
    return found.iloc[0]


def test_energy_saved_at_each_floor_under_each_criterion(sweeps):
    comparison = compare_strategies(strategies(sweeps), drops=(2, 10, 20), floors=(95.0,),
                                    bootstrap=Bootstrap(resamples=50))
    assert comparison.floors == (95.0, 88.0, 80.0, 70.0) and comparison.reference_ca == 90.0
    assert list(comparison.table.columns) == list(TABLE_COLUMNS)
    assert len(comparison.table) == 3 * 3 * 4
    expected = {  # (strategy, criterion, floor): (voltage, energy saved)
        ("margin", "mean", 88.0): (1.0, 0.0), ("margin", "mean", 80.0): (0.7, 0.5),
        ("margin", "quantile:0.1", 80.0): (0.9, 0.19), ("margin", "quantile:0.1", 70.0): (0.7, 0.5),
        ("robust", "mean", 88.0): (0.9, 0.19), ("robust", "mean", 80.0): (0.8, 0.35),
        ("robust", "quantile:0.1", 80.0): (0.9, 0.19), ("robust", "yield:0.95", 70.0): (0.8, 0.35),
    }
    for (strategy, criterion, floor), (voltage, energy) in expected.items():
        found = row(comparison, strategy, criterion, floor)
        assert found.kept and (found.voltage, found.energy_saving) == pytest.approx((voltage, energy))
    for strategy in ("margin", "robust"):   # no voltage keeps 95%
        none = row(comparison, strategy, "mean", 95.0)
        assert not none.kept and math.isnan(none.energy_saving) and math.isnan(none.voltage)
    assert comparison.winners.set_index(["criterion", "floor"]).loc[("mean", 95.0)].winner == ""


def test_one_voltage_strategies_agree_with_operating_points(sweeps):
    comparison = compare_strategies(strategies(sweeps)[:2], drops=(2, 5, 10, 15, 20),
                                    criteria=("mean", "quantile:0.2", "yield:0.8"), bootstrap=Bootstrap(10))
    from neuralfuse.tradeoff import load_chips, load_sweep
    for name in ("margin", "robust"):
        table, per_chip = load_sweep(sweeps[name]), load_chips(sweeps[name])
        for criterion in comparison.criteria:
            for floor in comparison.floors:
                chosen = operating_points(table, floor, criterion, per_chip)["per_config"]["base"]
                found = row(comparison, name, criterion.label, floor)
                assert found.kept == (chosen is not None)
                if chosen is not None:
                    assert (found.voltage, found.energy_saving, found.criterion_score) == pytest.approx(
                        (chosen["voltage"], chosen["energy_saving"], chosen["criterion_score"]))


def test_per_chip_strategy_runs_each_chip_at_its_calibrated_voltage_and_is_judged_on_test(sweeps):
    comparison = compare_strategies(strategies(sweeps), drops=(10,), bootstrap=Bootstrap(50))
    mean = row(comparison, "robust per chip", "mean", 80.0)
    assert mean.per_chip and mean.kept and mean.energy_saving == pytest.approx(PER_CHIP_ENERGY)
    assert (mean.voltage_min, mean.voltage_max) == (0.7, 0.8) and math.isnan(mean.voltage)
    assert mean.pa_mean == pytest.approx(80.1)
    worst = row(comparison, "robust per chip", "quantile:0.1", 80.0)   # chips 0-1 score 60 on test
    assert not worst.kept and math.isnan(worst.energy_saving) and worst.criterion_score == 60.0
    text = format_comparison(comparison)
    assert "fails test" in text
    assert "each chip at its own voltage, calibrated on" in text


def test_winner_margin_and_ties(sweeps):
    comparison = compare_strategies(strategies(sweeps), drops=(10,), bootstrap=Bootstrap(200))
    winners = comparison.winners.set_index("criterion")
    mean = winners.loc["mean"]   # margin 0.5 against per chip 0.38 against robust 0.35
    assert (mean.winner, mean.runner_up) == ("margin", "robust per chip")
    assert mean.margin == pytest.approx(0.5 - PER_CHIP_ENERGY)
    assert mean.margin_low <= mean.margin_high and 0 < mean.win_fraction <= 1
    tie = winners.loc["quantile:0.1"]   # margin and robust both at 0.9: a tie, the first named wins it
    assert (tie.winner, tie.runner_up, tie.margin) == ("margin", "robust", 0.0)
    assert row(comparison, "margin", "quantile:0.1", 80.0).best and row(comparison, "robust", "quantile:0.1", 80.0).best
    assert "tie: margin = robust" in format_comparison(comparison)


def test_bootstrap_is_seeded_and_paired(sweeps):
    pair = [Strategy("margin", sweeps["margin"]), Strategy("cheap", sweeps["margin"], config="cheap")]
    first = compare_strategies(pair, drops=(2, 5, 10, 20), bootstrap=Bootstrap(300, seed=7))
    again = compare_strategies(pair, drops=(2, 5, 10, 20), bootstrap=Bootstrap(300, seed=7))
    other = compare_strategies(pair, drops=(2, 5, 10, 20), bootstrap=Bootstrap(300, seed=8))
    pd.testing.assert_frame_equal(first.table, again.table)
    pd.testing.assert_frame_equal(first.winners, again.winners)
    assert not first.table.energy_saving_se.equals(other.table.energy_saving_se)
    # "cheap" has margin's chips and 5 points less energy: on every shared draw it saves exactly
    # 5 points more, although each one's energy saved varies from draw to draw.
    at = first.winners.set_index(["criterion", "floor"]).loc[("mean", 85.0)]
    assert row(first, "margin", "mean", 85.0).energy_saving_se > 0.05
    assert (at.winner, at.runner_up) == ("cheap", "margin") and at.win_fraction == 1.0
    assert (at.margin, at.margin_low, at.margin_high) == pytest.approx((0.05, 0.05, 0.05))
    assert at.margin_se == pytest.approx(0.0, abs=1e-12)


def test_bootstrap_matches_operating_points_on_each_draw(sweeps):
    """The vectorized bootstrap against the slow obvious one: operating_points on each draw's chips."""
    bootstrap = Bootstrap(40, seed=3)
    comparison = compare_strategies([Strategy("margin", sweeps["margin"])], drops=(5,),
                                    criteria=("mean", "quantile:0.2"), bootstrap=bootstrap)
    from neuralfuse.tradeoff import load_chips
    per_chip = load_chips(sweeps["margin"])
    per_chip = per_chip[per_chip.config == "base"]
    for criterion in comparison.criteria:
        energies = []
        for draw in bootstrap.draws(CHIPS)[1:]:
            drawn = pd.concat([per_chip[per_chip.chip == c] for c in draw])
            groups = drawn.groupby(["config", "voltage"], sort=False)
            table = groups.agg(pa_mean=("pa", "mean"), energy_saving=("energy_saving", "first")).reset_index()
            chosen = operating_points(table, 85.0, criterion, drawn)["per_config"]["base"]
            energies.append(math.nan if chosen is None else chosen["energy_saving"])
        energies = np.array(energies)
        found = row(comparison, "margin", criterion.label, 85.0)
        kept = energies[~np.isnan(energies)]
        assert found.kept_fraction == pytest.approx(len(kept) / len(energies))
        assert found.energy_saving_se == pytest.approx(kept.std(ddof=1))
        assert (found.energy_saving_low, found.energy_saving_high) == pytest.approx(
            tuple(np.percentile(kept, [2.5, 97.5])))


def test_energy_is_counted_against_the_reference_base_model(sweeps, tmp_path):
    """A base model that reads twice the reference's weights spends twice its energy at a voltage."""
    big = write_sweep(tmp_path / "big", {"base": ROBUST}, accesses=2000.0)
    comparison = compare_strategies([Strategy("margin", sweeps["margin"]), Strategy("big", big)], drops=(10,),
                                    bootstrap=Bootstrap(10))
    assert row(comparison, "big", "mean", 80.0).energy_saving == pytest.approx(1 - 2 * (1 - 0.35))
    drops_from_big = compare_strategies([Strategy("margin", sweeps["margin"]), Strategy("big", big)], drops=(10,),
                                        reference="big", bootstrap=Bootstrap(10))
    assert drops_from_big.floors == (79.0,)   # the CA of "big" is 89
    assert row(drops_from_big, "big", "mean", 79.0).energy_saving == pytest.approx(0.35)
    assert row(drops_from_big, "margin", "mean", 79.0).energy_saving == pytest.approx(1 - 0.5 * 0.5)


def test_criteria_that_coincide_on_these_chips_are_named(sweeps, tmp_path):
    comparison = compare_strategies(strategies(sweeps), drops=(10,), bootstrap=Bootstrap(10))
    assert comparison.same_as == {"yield:0.95": "quantile:0.1"}   # 10 chips: all ten, both
    assert (comparison.table[comparison.table.criterion == "yield:0.95"].same_as == "quantile:0.1").all()
    text = format_comparison(comparison)
    assert ("10th-percentile chip PA (quantile:0.1) = 95% yield (yield:0.95): the same condition on 10 chips "
            "(at least 10 of them keep the floor), shown once") in text
    assert text.count("winner at each floor") == 2   # mean, and the two as one
    thirty = list(range(30))
    many = write_sweep(tmp_path / "thirty", {"base": {v: pa * 3 for v, pa in MARGIN.items()}}, chips=thirty)
    assert compare_strategies([Strategy("m", many)], drops=(10,), bootstrap=Bootstrap(10)).same_as == {}


@pytest.mark.parametrize("change, message", [
    ({"chips": list(range(10, 20))}, r"evaluation chips \(0-9: 10 chips vs 10-19: 10 chips\)"),
    ({"data_fingerprint": "other-images", "provenance": {"samples": 2000}},
     r"test images \(test-images\.\.\., 1000 samples vs other-images\.\.\., 2000 samples\)"),
    ({"tech": "my-curve"}, r"technology \(14nm-512x64 vs my-curve\)"),
    ({"fault_model": "flip"}, r"fault model \(stuck-at vs flip\)"),
    ({"bits": 4}, r"weight bits \(8 vs 4\)"),
])
def test_strategies_measured_differently_are_refused(sweeps, tmp_path, change, message):
    other = write_sweep(tmp_path / "other", {"base": ROBUST}, **change)
    with pytest.raises(StrategyError, match="strategies 'margin' .* and 'other' .* were not measured alike: "
                       + message) as caught:
        compare_strategies([Strategy("margin", sweeps["margin"]), Strategy("other", other)])
    assert "\n" not in str(caught.value)


def test_strategies_may_differ_in_storage_format_but_a_calibration_may_not(sweeps, tmp_path):
    robust = {"memory": {"bits": 8, "storage": "robust", "tech": "14nm-512x64", "fault_model": "stuck-at",
                         "layout": "arrays"}}   # as sweeps record their memory config now
    stored = write_sweep(tmp_path / "robust-storage", {"base": ROBUST}, **robust)
    comparison = compare_strategies([Strategy("margin", sweeps["margin"]), Strategy("robust storage", stored)])
    assert [s["storage"] for s in comparison.as_dict()["strategies"]] == ["symmetric", "robust"]
    calibration = write_sweep(tmp_path / "robust-storage-cal", {"base": ROBUST_VALIDATION}, split="validation",
                              **robust)
    with pytest.raises(StrategyError, match=r"does not match its test sweep .*: storage format \(robust vs symmetric\)"):
        compare_strategies([Strategy("x", sweeps["robust"], calibration=calibration)])


def test_bad_strategies_are_refused(sweeps, tmp_path):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "sweep.json").write_text((sweeps["robust"] / "sweep.json").read_text())
    cases = [
        ([Strategy("x", tmp_path / "nowhere")], "sweep folder '.*nowhere' of strategy 'x' does not exist"),
        ([Strategy("x", tmp_path)], "strategy 'x': .* is not a sweep folder"),
        ([Strategy("x", unfinished)], "strategy 'x': .*unfinished' holds no finished sweep"),
        ([Strategy("x", sweeps["margin"], config="unets")],
         "config 'unets' of strategy 'x' is not in sweep '.*margin': it holds base, cheap"),
        ([Strategy("x", sweeps["calibration"])], "holds validation images: give a sweep on test images"),
        ([Strategy("x", sweeps["robust"], calibration=sweeps["robust"])],
         "calibration sweep .* holds test images: give a sweep on the base model's held-out images"),
        ([Strategy("x", sweeps["margin"], calibration=sweeps["calibration"])],
         "does not match its test sweep .*: base model"),
        ([Strategy("x", sweeps["margin"]), Strategy("x", sweeps["robust"])], "'x' given twice"),
        ([Strategy("x", sweeps["margin"])], "reference 'y' is not one of the strategies: use one of 'x'"),
    ]
    for given, message in cases:
        with pytest.raises(StrategyError, match=message):
            compare_strategies(given, reference="y" if "reference" in message else None)
    other_chips = write_sweep(tmp_path / "cal-chips", {"base": ROBUST_VALIDATION}, split="validation",
                              chips=list(range(2**39, 2**39 + 10)))   # `--on validation`: validation chips
    with pytest.raises(StrategyError, match="does not match its test sweep.*evaluation chips"):
        compare_strategies([Strategy("x", sweeps["robust"], calibration=other_chips)])
    fewer = write_sweep(tmp_path / "cal-voltages", {"base": {v: ROBUST_VALIDATION[v] for v in VOLTAGES[:3]}},
                        split="validation")
    with pytest.raises(StrategyError, match="same configurations, chips and voltages"):
        compare_strategies([Strategy("x", sweeps["robust"], calibration=fewer)])
    with pytest.raises(ValueError, match="quantile level=1.0 is not valid"):
        compare_strategies(strategies(sweeps), criteria=("quantile:1",))
    with pytest.raises(ValueError, match="drop=-2 is not valid"):
        compare_strategies(strategies(sweeps), drops=(-2,))
    with pytest.raises(ValueError, match="resamples=1 is not valid"):
        Bootstrap(1)


def test_report_files(sweeps, tmp_path):
    comparison = compare_strategies(strategies(sweeps), drops=(2, 10, 20), floors=(95.0,), bootstrap=Bootstrap(50))
    paths = write_comparison(comparison, tmp_path / "out", provenance={"spec": "s.toml"})
    assert sorted(p.name for p in paths) == sorted(FILES)
    table = pd.read_csv(tmp_path / "out" / "strategies.csv")
    assert len(table) == 3 * 3 * 4 and list(table.columns) == list(TABLE_COLUMNS)
    assert len(pd.read_csv(tmp_path / "out" / "winners.csv")) == 3 * 4
    saved = json.loads((tmp_path / "out" / "strategies.json").read_text())   # strict JSON: no NaN
    assert saved["provenance"] == {"spec": "s.toml"} and saved["reference_ca"] == 90.0
    assert saved["setting"]["chips"] == list(range(CHIPS)) and saved["bootstrap"]["resamples"] == 50
    none = [r for r in saved["results"] if r["floor"] == 95.0 and r["strategy"] == "margin"][0]
    assert none["energy_saving"] is None and none["kept"] is False
    assert (tmp_path / "out" / "strategies.txt").read_text() == format_comparison(comparison) + "\n"
    assert all((tmp_path / "out" / f"strategies.{e}").stat().st_size > 1000 for e in ("png", "svg"))
    with pytest.raises(ValueError, match="folder '.*missing' does not exist"):
        write_comparison(comparison, tmp_path / "missing" / "out")


def test_which_protection_at_the_lead_floor(sweeps):
    comparison = compare_strategies(strategies(sweeps), drops=(5, 10), bootstrap=Bootstrap(50))
    summary = which_protection(comparison, 80.0)
    assert summary["criteria"] == ["mean", "quantile:0.1"] and summary["same_as"] == {"yield:0.95": "quantile:0.1"}
    by_name = {s["name"]: s for s in summary["strategies"]}
    assert by_name["margin"]["energy_saving"] == {"mean": 0.5, "quantile:0.1": 0.19}
    assert by_name["robust per chip"]["energy_saving"]["quantile:0.1"] is None
    assert by_name["margin"]["best"] == {"mean": True, "quantile:0.1": True}
    json.dumps(summary)
    lines = format_which_protection(summary).splitlines()
    assert lines[0].startswith("which protection at 80.00% PA (margin's CA minus 10 points)")
    assert "quantile:0.1 = yield:0.95" in lines[1]
    assert lines[2].split()[:2] == ["margin", "50.0"] and lines[2].count("*") == 2
    assert "fails test" in lines[4]
    assert lines[-1] == "  (yield:0.95 is the same condition as quantile:0.1 on 10 chips)"
    with pytest.raises(ValueError, match="floor=81.0 is not valid: use one of the comparison's floors 85, 80"):
        which_protection(comparison, 81.0)


def test_criteria_judge_many_rows_at_once():
    pa = np.array([[90.0, 85.0, 70.0], [90.0, 90.0, 90.0]])
    for text in ("mean", "quantile:0.5", "yield:0.6"):
        criterion = parse_criterion(text)
        assert criterion.meets(pa, 80.0).tolist() == [criterion.meets(r, 80.0) for r in pa]
        assert criterion.score(pa, 80.0).tolist() == [criterion.score(r, 80.0) for r in pa]


# --- the spec ------------------------------------------------------------------------------------

def test_spec_reads_strategies_relative_to_its_folder(sweeps, tmp_path):
    spec = parse_spec({"reference": "robust", "drops": [5], "floors": [80], "criteria": ["mean"],
                       "bootstrap": {"resamples": 20, "seed": 4},
                       "strategy": [{"name": "margin", "sweep": "margin"},
                                    {"name": "robust", "sweep": "robust", "config": "base",
                                     "calibration": "robust-cal"}]}, tmp_path)
    assert spec.strategies[1] == Strategy("robust", tmp_path / "robust", calibration=tmp_path / "robust-cal")
    comparison = spec.compare()
    assert comparison.floors == (84.0, 80.0) and comparison.bootstrap == Bootstrap(20, seed=4)


def test_spec_file_that_cannot_be_read(tmp_path):
    (tmp_path / "bad.toml").write_text("strategy = [")
    with pytest.raises(StrategySpecError, match="cannot read strategy spec '.*bad.toml'"):
        load_spec(tmp_path / "bad.toml")


@pytest.mark.parametrize("change, message", [
    ({"criteria": ["median"]}, "criterion 'median' is not valid: use mean, quantile:Q"),
    ({"criteria": ["quantile:1.5"]}, r"quantile level=1.5 is not valid: use a fraction in \(0, 1\)"),
    ({"criteria": ["yield:0"]}, r"yield level=0.0 is not valid: use a fraction in \(0, 1\]"),
    ({"criteria": ["mean", "mean"]}, "give each criterion once"),
    ({"drops": [2, "x"]}, "drop='x' is not valid"),
    ({"floors": [120]}, r"floor=120 is not valid: use a percentage in \[0, 100\]"),
    ({"drops": [], "floors": []}, "no accuracy floors"),
    ({"drops": 5}, "drops = 5 is not valid: give a list"),
    ({"bootstrap": {"resamples": 0}}, "resamples=0 is not valid: use an integer >= 2"),
    ({"bootstrap": {"level": 1.0}}, r"level=1.0 is not valid: use a fraction in \(0, 1\)"),
    ({"bootstrap": {"seeds": 1}}, r"unknown \[bootstrap\] key\(s\) \['seeds'\]: use level, resamples, seed"),
    ({"strategies": []}, r"unknown strategy spec key\(s\) \['strategies'\]"),
    ({"strategy": []}, r"needs \[\[strategy\]\] tables"),
    ({"strategy": [{"name": "a"}]}, "a \\[\\[strategy\\]\\] needs 'sweep'"),
    ({"strategy": [{"name": "a", "sweep": "s", "model": "x"}]}, r"unknown \[\[strategy\]\] key\(s\) \['model'\]"),
    ({"strategy": [{"name": "", "sweep": "s"}]}, "strategy name '' is not valid"),
    ({"strategy": [{"name": "a", "sweep": 3}]}, r"\[\[strategy\]\] sweep = 3 is not valid: use a string"),
])
def test_bad_specs_are_one_line_errors(change, message):
    raw = {"strategy": [{"name": "a", "sweep": "s"}], **change}
    with pytest.raises(StrategySpecError, match=message) as caught:
        parse_spec(raw)
    assert "\n" not in str(caught.value)


def test_spec_example_in_the_docstring_parses():
    import textwrap

    import neuralfuse.strategy_spec
    from neuralfuse.toml_files import tomllib

    doc = neuralfuse.strategy_spec.__doc__
    toml = textwrap.dedent(doc[doc.index('    reference = "VGG11"'):doc.index("Everything is checked")])
    toml = "\n".join(line.split("#")[0] for line in toml.splitlines())
    spec = parse_spec(tomllib.loads(toml), "specs")
    assert [s.name for s in spec.strategies] == ["VGG11", "VGG11, per chip"]
    assert spec.strategies[1].calibration == Path("specs/sweeps/vgg11-calibration")
    assert spec.bootstrap == Bootstrap(1000, seed=0, level=0.95) and spec.floors == (80.0,)


# --- command line, on real sweeps of tiny models -------------------------------------------------

@pytest.fixture(scope="module")
def tiny_sweeps(tmp_path_factory):
    """`neuralfuse sweep` folders: the tiny model and a weight-clipped twin on the same 2 chips and
    40 test images, the tiny model's calibration sweep, and a sweep on other chips."""
    import torch
    from click.testing import CliRunner

    from neuralfuse.checkpoint import save_checkpoint
    from neuralfuse.cli import main
    from neuralfuse.clipping import clip_stored_weights
    from tiny import sweep_args, tiny_model

    root = tmp_path_factory.mktemp("tiny-sweeps")
    clipped = tiny_model()
    with torch.no_grad():
        clip_stored_weights(clipped, 0.1)
    checkpoints = {}
    for name, model in (("plain", tiny_model()), ("clipped", clipped)):
        checkpoints[name] = save_checkpoint(root / f"{name}.pt", model, arch="resnet18", width=1 / 16,
                                            num_classes=10, bits=8, dataset="default",
                                            split={"val_size": 40, "seed": 4})
    runs = {"plain": ("plain", ()), "clipped": ("clipped", ()), "plain-cal": ("plain", ("--on", "calibration")),
            "other-chips": ("plain", ("--first-chip", "2"))}
    for folder, (model, extra) in runs.items():
        result = CliRunner().invoke(main, [*sweep_args(checkpoints[model], root / folder), *extra])
        assert result.exit_code == 0, result.output
    return root


SPEC = """
reference = "plain"
drops = [0, 50]
bootstrap = {{ resamples = 20, seed = 1 }}
{extra}
[[strategy]]
name = "plain"
sweep = "plain"

[[strategy]]
name = "clipped"
sweep = "{clipped}"
config = "{config}"

[[strategy]]
name = "plain per chip"
sweep = "plain"
calibration = "plain-cal"
"""


def spec_file(root: Path, extra: str = "", clipped: str = "clipped", config: str = "base") -> Path:
    path = root / "spec.toml"
    path.write_text(SPEC.format(extra=extra, clipped=clipped, config=config))
    return path


def test_cli_strategies_compares_real_sweeps(tiny_sweeps, tmp_path):
    from click.testing import CliRunner

    from neuralfuse.cli import main

    out = tmp_path / "comparison"
    result = CliRunner().invoke(main, ["strategies", str(spec_file(tiny_sweeps)), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Which protection pays")
    assert "2 evaluation chips (seeds 0-1)" in result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    table = pd.read_csv(out / "strategies.csv")
    assert len(table) == 3 * 3 * 2 and set(table.strategy) == {"plain", "clipped", "plain per chip"}
    saved = json.loads((out / "strategies.json").read_text())
    assert saved["provenance"]["spec"] == str((tiny_sweeps / "spec.toml").resolve())
    assert saved["provenance"]["command"].startswith("neuralfuse")
    assert saved["setting"]["chips"] == [0, 1] and saved["setting"]["samples"] == 40
    # on 2 chips, quantile:0.1 and yield:0.95 both ask both chips
    assert [c["same_as"] for c in saved["criteria"]] == [None, None, "quantile:0.1"]
    floor_0 = table[(table.floor == 0) & (table.criterion == "mean")].set_index("strategy")
    assert floor_0.loc["plain"].voltage == 0.9 and floor_0.loc["plain per chip"].voltage_max == 0.9


@pytest.mark.parametrize("spec, message", [
    ({"extra": 'criteria = ["median"]'}, "criterion 'median' is not valid: use mean, quantile:Q"),
    ({"extra": 'criteria = ["quantile:1.5"]'}, r"quantile level=1.5 is not valid: use a fraction in (0, 1)"),
    ({"extra": 'criteria = ["yield:0"]'}, r"yield level=0.0 is not valid: use a fraction in (0, 1]"),
    ({"clipped": "nowhere"}, "sweep folder '"),
    ({"config": "unets"}, "config 'unets' of strategy 'clipped' is not in sweep"),
    ({"clipped": "other-chips"}, "evaluation chips (0-1: 2 chips vs 2-3: 2 chips)"),
])
def test_cli_strategies_bad_input_is_a_one_line_error_and_writes_nothing(tiny_sweeps, tmp_path, spec, message):
    from click.testing import CliRunner

    from neuralfuse.cli import main

    out = tmp_path / "comparison"
    result = CliRunner().invoke(main, ["strategies", str(spec_file(tiny_sweeps, **spec)), "-o", str(out)])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output and not out.exists()

