"""Accuracy criteria (mean, chip quantile, yield) and per-chip voltage, on hand-made sweep tables."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from neuralfuse.criteria import MEAN, Criterion, parse_criterion
from neuralfuse.demo import NF, format_summary, summarize
from neuralfuse.per_chip_voltage import (PER_CHIP_COLUMNS, format_per_chip, per_chip_voltages,
                                         summarize_per_chip)
from neuralfuse.tradeoff import BASE, format_operating_points, operating_points

FLOOR = 80.0
# PA of 10 chips at each voltage, chosen so that the criteria pick different voltages at 80%:
CHIP_PA = {
    1.0: [90.0] * 10,
    0.9: [85.0] * 10,                  # every chip keeps 80
    0.8: [85.0] * 8 + [75.0, 70.0],    # mean 83.5, worst chip 70, 8 of 10 chips keep 80
    0.7: [90.0] * 5 + [70.0] * 5,      # mean exactly 80, 5 of 10 chips keep 80
}
SAVING = {1.0: 0.0, 0.9: 0.19, 0.8: 0.35, 0.7: 0.5}


def per_chip_table(config: str = BASE) -> pd.DataFrame:
    return pd.DataFrame([(config, v, chip, pa) for v, chips in CHIP_PA.items() for chip, pa in enumerate(chips)],
                        columns=["config", "voltage", "chip", "pa"])


def sweep_table(per_chip: pd.DataFrame) -> pd.DataFrame:
    """The summary rows of ``per_chip`` as a sweep has them."""
    groups = per_chip.groupby(["config", "voltage"], sort=False).pa
    table = pd.DataFrame({"pa_mean": groups.mean(), "pa_std": groups.std(ddof=1)}).reset_index()
    return table.assign(ber=0.01, ca=90.0, energy_saving=table.voltage.map(SAVING))


@pytest.mark.parametrize("text, voltage, score", [
    ("mean", 0.7, 80.0),             # a mean exactly at the floor keeps it
    ("yield:0.8", 0.8, 0.8),         # 8 of 10 chips keep 80 at 0.8, 5 at 0.7
    ("quantile:0.3", 0.8, 85.0),     # the 3rd-worst chip (ceil(0.3 * 10) = 3, not 4)
    ("quantile:0.2", 0.9, 85.0),     # the 2nd-worst chip is 75 at 0.8
    ("quantile:0.1", 0.9, 85.0),     # the worst chip
    ("yield:0.95", 0.9, 1.0),        # 10 chips: every chip, as quantile:0.1
    ("yield:1", 0.9, 1.0),
])
def test_each_criterion_picks_its_own_voltage(text, voltage, score):
    per_chip = per_chip_table()
    result = operating_points(sweep_table(per_chip), FLOOR, text, per_chip)
    chosen = result["per_config"][BASE]
    assert (chosen["voltage"], chosen["criterion_score"]) == (voltage, score)
    assert result["criterion"] == parse_criterion(text).label
    json.dumps(result)  # plain values


def test_quantile_is_one_chip_without_interpolation():
    pa = np.arange(20.0)[::-1]  # 19 .. 0, in any order
    assert parse_criterion("quantile:0.05").score(pa, 0) == 0.0   # the worst of 20
    assert parse_criterion("quantile:0.1").score(pa, 0) == 1.0    # the 2nd worst of 20
    assert parse_criterion("quantile:0.11").score(pa, 0) == 2.0   # ceil(2.2) = 3rd worst
    assert parse_criterion("quantile:0.1").score(pa[:10], 0) == 10.0  # the worst of 10
    assert parse_criterion("quantile:0.5").score([1.0, 2.0, 3.0, 4.0], 0) == 2.0  # a chip, not 2.5
    # 30 chips: quantile:0.1 is the yield of 28 chips, yield:0.95 needs 29
    pa = np.array([50.0] * 2 + [90.0] * 28)
    assert parse_criterion("quantile:0.1").meets(pa, 80) and not parse_criterion("yield:0.95").meets(pa, 80)


def test_mean_needs_no_per_chip_table_the_others_do():
    per_chip = per_chip_table()
    table = sweep_table(per_chip)
    assert operating_points(table, FLOOR) == operating_points(table, FLOOR, MEAN, per_chip)
    with pytest.raises(ValueError, match="'yield:0.95' needs the per-chip accuracies"):
        operating_points(table, FLOOR, "yield:0.95")
    with pytest.raises(ValueError, match="no chips for 'base' at 0.7 Vmin"):
        operating_points(table, FLOOR, "yield:0.95", per_chip[per_chip.voltage != 0.7])


def test_operating_points_text_names_the_criterion():
    per_chip = per_chip_table()
    text = format_operating_points(operating_points(sweep_table(per_chip), FLOOR, "yield:0.8", per_chip))
    assert text.splitlines()[0] == "lowest-energy operating points with 80% yield >= 80% (yield:0.8):"
    assert "0.800 Vmin" in text and "yield:0.8 80% of chips" in text
    plain = format_operating_points(operating_points(sweep_table(per_chip), FLOOR))
    assert plain.splitlines()[0] == "lowest-energy operating points with mean PA >= 80%:"


@pytest.mark.parametrize("text, message", [
    ("median", "criterion 'median' is not valid: use mean, quantile:Q"),
    ("quantile", "criterion 'quantile' needs a number"),
    ("yield:", "the number after ':' is missing"),
    ("quantile:0", r"quantile level=0.0 is not valid: use a fraction in \(0, 1\)"),
    ("quantile:1", r"quantile level=1.0 is not valid: use a fraction in \(0, 1\)"),
    ("yield:0", r"yield level=0.0 is not valid: use a fraction in \(0, 1\]"),
    ("yield:1.01", r"yield level=1.01 is not valid"),
    ("yield:abc", "'abc' is not a number"),
    ("mean:0.5", "'mean' takes no number"),
])
def test_bad_criteria_are_one_line_errors(text, message):
    with pytest.raises(ValueError, match=message) as caught:
        parse_criterion(text)
    assert "\n" not in str(caught.value)


def test_criteria_parse_and_describe():
    assert parse_criterion(" Quantile:0.10 ") == Criterion("quantile", 0.1)
    assert parse_criterion("yield:1").label == "yield:1" and parse_criterion("mean") is not MEAN
    assert [parse_criterion(t).describe() for t in ("mean", "quantile:0.1", "quantile:0.02", "yield:0.95")] == [
        "mean PA", "10th-percentile chip PA", "2nd-percentile chip PA", "95% yield"]


def test_demo_summary_has_a_table_per_criterion():
    per_chip = pd.concat([per_chip_table(BASE), per_chip_table(NF).assign(pa=lambda t: t.pa - 1.0)])
    table = sweep_table(per_chip).assign(chips=10, pa_sem=1.0, accesses_base=1000.0,
                                         accesses_generator=[0.0] * 4 + [30.0] * 4)
    criteria = ("mean", "quantile:0.1", "yield:0.8")
    summary = summarize(table, per_chip, 0.8, min_accuracy=FLOOR, criteria=criteria)
    lead = {f["criterion"]: f for f in summary["floors"] if f["lead"]}
    assert {c: f["without_nf"]["voltage"] for c, f in lead.items()} == {
        "mean": 0.7, "quantile:0.1": 0.9, "yield:0.8": 0.8}
    details = {"setup": "s", "description": "d", "samples": 10, "layout": "arrays", "output": "out",
               "generator": {"architecture": "UNetS", "trained_at": 0.8, "command": "c"}}
    text = format_summary({**summary, **details})
    assert "At an accuracy floor of 80.0% (mean PA;" in text
    assert "(the lowest-energy swept voltage whose 10th-percentile chip PA stays at or above it;" in text
    assert "(the lowest-energy swept voltage where at least 80% of the chips stay at or above it;" in text
    assert text.count("> ") == 3  # the lead floor in each table
    assert "  floor (80% yield)" in text and "  floor (mean PA)" in text


# --- per-chip voltage ----------------------------------------------------------------------------

VOLTAGES = (1.0, 0.9, 0.8)
ENERGY = {1.0: 1.0, 0.9: 0.8, 0.8: 0.6}
VALIDATION_PA = {0: (90.0, 85.0, 81.0),   # keeps 80 down to 0.8
                 1: (90.0, 82.0, 70.0),   # down to 0.9
                 2: (79.0, 60.0, 40.0)}   # at no voltage: runs at 1.0
TEST_PA = {0: (88.0, 84.0, 78.0),         # passes validation at 0.8, fails test there
           1: (89.0, 83.0, 72.0),
           2: (85.0, 62.0, 41.0)}


def chips_table(pa: dict[int, tuple[float, ...]]) -> pd.DataFrame:
    rows = [(BASE, v, chip, values[i], 0.01 * i, ENERGY[v], 1 - ENERGY[v])
            for chip, values in pa.items() for i, v in enumerate(VOLTAGES)]
    return pd.DataFrame(rows, columns=["config", "voltage", "chip", "pa", "ber", "energy_relative",
                                       "energy_saving"])


def test_each_chip_runs_at_its_own_validated_voltage_and_is_scored_on_test():
    chips = per_chip_voltages(chips_table(VALIDATION_PA), chips_table(TEST_PA), FLOOR)
    assert tuple(chips.columns) == PER_CHIP_COLUMNS
    assert chips.voltage.tolist() == [0.8, 0.9, 1.0]
    assert chips.calibrated.tolist() == [True, True, False]
    assert chips.validation_pa.tolist() == [81.0, 82.0, 79.0]
    assert chips.test_pa.tolist() == [78.0, 83.0, 85.0]
    assert chips.meets_test.tolist() == [False, True, True]  # chip 0 passed validation, fails test
    summary = summarize_per_chip(chips, "yield:0.9", FLOOR).iloc[0]
    assert (summary.chips, summary.uncalibrated, summary.meets_test) == (3, 1, 2)
    assert summary.energy_saving == pytest.approx(1 - (0.6 + 0.8 + 1.0) / 3)
    assert summary.test_pa_min == 78.0 and summary.test_pa_mean == pytest.approx(82.0)
    assert summary.criterion_score == pytest.approx(2 / 3) and not summary.meets_criterion
    assert summarize_per_chip(chips, "mean", FLOOR).iloc[0].meets_criterion  # mean 82 >= 80
    text = format_per_chip(summarize_per_chip(chips, "mean", FLOOR), FLOOR)
    assert "2 of 3 chips keep 80% on test; 1 kept it at no voltage and run at the highest swept one" in text


def test_per_chip_voltage_needs_the_same_chips_and_voltages():
    validation, test = chips_table(VALIDATION_PA), chips_table(TEST_PA)
    with pytest.raises(ValueError, match="same configurations, chips and voltages.*--on calibration"):
        per_chip_voltages(validation.assign(chip=validation.chip + 100), test, FLOOR)
    with pytest.raises(ValueError, match="same configurations"):
        per_chip_voltages(validation[validation.voltage != 0.8], test, FLOOR)
    with pytest.raises(ValueError, match="min_accuracy=120"):
        per_chip_voltages(validation, test, 120.0)
