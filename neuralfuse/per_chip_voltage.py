"""Per-chip voltage ("calibrated", as MATIC does in hardware): each chip runs at its own safe voltage.

Instead of one supply voltage for every chip, each chip runs at its own lowest swept voltage whose
perturbed accuracy on **validation** images keeps the floor; it is then scored on **test** images
at that voltage. Two sweeps of the same configurations, chips and voltages give everything: one
on the base model's validation images (``neuralfuse sweep --on calibration``: validation images on
the evaluation chips), one on test images (the ordinary sweep).

    validation, test = load_chips("sweep-calibration"), load_chips("sweep")
    chips = per_chip_voltages(validation, test, min_accuracy=80.0)
    print(format_per_chip(summarize_per_chip(chips, parse_criterion("yield:0.95"), 80.0), 80.0))

A chip that keeps the floor at no swept voltage on validation runs at the highest swept voltage
(``calibrated`` False): a product ships it at its safest setting rather than discarding it, and it
is scored, and counted against the floor, on test like any other. A chip can keep the floor on
validation and miss it on test (``meets_test`` False): it is reported, not hidden.

Energy is the weight-memory energy per input at each chip's own voltage, as the sweep accounts it
at a fixed voltage (Eq. 6: the base model's reads at the chip's voltage, a generator's reads at
Vmin); the mean over chips is the energy of a population of chips each at its own voltage.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from characterization.atomic import atomic_path
from characterization.validation import check_scalar
from neuralfuse.criteria import Criterion, parse_criterion
from neuralfuse.tradeoff import SweepError, load_chips, load_record

PER_CHIP_COLUMNS = ("config", "chip", "voltage", "ber", "calibrated", "validation_pa", "test_pa",
                    "meets_test", "energy_relative", "energy_saving")
SUMMARY_COLUMNS = ("config", "chips", "uncalibrated", "meets_test", "test_pa_mean", "test_pa_min",
                   "voltage_min", "voltage_max", "energy_saving", "criterion", "criterion_score",
                   "meets_criterion")


def per_chip_voltages(validation: pd.DataFrame, test: pd.DataFrame, min_accuracy: float) -> pd.DataFrame:
    """Each chip of each configuration at its own lowest voltage keeping ``min_accuracy`` (%) on
    validation, scored on test.

    ``validation`` and ``test`` are per-chip sweep tables (:func:`neuralfuse.tradeoff.load_chips`:
    ``config``, ``voltage``, ``chip``, ``pa``, ``ber``, ``energy_relative``, ``energy_saving``) of
    the same configurations, chips and voltages; anything else raises a ValueError. Returns one
    row per (configuration, chip) with :data:`PER_CHIP_COLUMNS`: the chosen ``voltage`` and its
    ``ber``, ``calibrated`` (False: no swept voltage kept the floor on validation, so the chip runs
    at the highest one), the PA there on validation and on test, ``meets_test`` (test PA ≥ the
    floor) and the energy columns of that voltage.
    """
    check_scalar(min_accuracy, "min_accuracy", float, min_val=0.0, max_val=100.0,
                 allowed="a percentage in [0, 100]")
    keys = ["config", "voltage", "chip"]
    for name, table in (("validation", validation), ("test", test)):
        if table.duplicated(keys).any():
            raise ValueError(f"the {name} table holds a (config, voltage, chip) twice")
    grid = {name: set(map(tuple, table[keys].itertuples(index=False)))
            for name, table in (("validation", validation), ("test", test))}
    if grid["validation"] != grid["test"]:
        only = sorted(grid["validation"] ^ grid["test"])[0]
        raise ValueError("the validation and test sweeps must hold the same configurations, chips and "
                         f"voltages: (config, voltage, chip) = {only} is in only one (sweep the validation "
                         "images on the test sweep's chips: `neuralfuse sweep --on calibration`)")
    both = test.merge(validation[keys + ["pa"]].rename(columns={"pa": "validation_pa"}), on=keys)
    both = both.rename(columns={"pa": "test_pa"}).sort_values(["config", "chip", "voltage"], kind="stable")
    rows = []
    for _, chip in both.groupby(["config", "chip"], sort=False):
        passing = chip[chip.validation_pa >= min_accuracy]
        chosen = passing.iloc[0] if len(passing) else chip.iloc[-1]   # lowest passing, else highest
        rows.append({**chosen.to_dict(), "calibrated": bool(len(passing)),
                     "meets_test": bool(chosen.test_pa >= min_accuracy)})
    return pd.DataFrame(rows, columns=list(PER_CHIP_COLUMNS)).reset_index(drop=True)


def summarize_per_chip(chips: pd.DataFrame, criterion: Criterion | str, min_accuracy: float) -> pd.DataFrame:
    """One row per configuration of a :func:`per_chip_voltages` table (:data:`SUMMARY_COLUMNS`):
    ``chips``, ``uncalibrated`` (chips run at the highest voltage), ``meets_test`` (chips keeping
    ``min_accuracy`` on test), the mean and lowest test PA, the range of the chips' voltages,
    ``energy_saving``: 1 - the mean over chips of each chip's energy relative to Vmin, and how the
    chips' test PAs fare under ``criterion`` (its label, ``criterion_score``, ``meets_criterion``)."""
    criterion = parse_criterion(criterion)
    groups = chips.groupby("config", sort=False)
    summary = pd.DataFrame({
        "chips": groups.size(), "uncalibrated": groups.calibrated.apply(lambda c: int((~c).sum())),
        "meets_test": groups.meets_test.sum().astype(int), "test_pa_mean": groups.test_pa.mean(),
        "test_pa_min": groups.test_pa.min(), "voltage_min": groups.voltage.min(),
        "voltage_max": groups.voltage.max(), "energy_saving": 1.0 - groups.energy_relative.mean(),
        "criterion": criterion.label,
        "criterion_score": groups.test_pa.apply(lambda pa: criterion.score(pa, min_accuracy)),
        "meets_criterion": groups.test_pa.apply(lambda pa: criterion.meets(pa, min_accuracy)),
    }).reset_index()
    return summary[list(SUMMARY_COLUMNS)]


def per_chip_from_sweeps(validation_dir: str | Path, test_dir: str | Path,
                         min_accuracy: float) -> pd.DataFrame:
    """:func:`per_chip_voltages` of two finished sweep folders, checked to hold validation and test
    images respectively, under the same memory config (a SweepError otherwise)."""
    records = {}
    for path, split in ((validation_dir, "validation"), (test_dir, "test")):
        records[split] = load_record(path)
        recorded = records[split]["split"]
        if recorded != split:
            raise SweepError(f"{str(path)!r} holds a sweep on {recorded} images; per-chip voltage needs "
                             f"one on {split} images")
    validation, test = records["validation"]["memory"], records["test"]["memory"]
    differ = [f"{key} {validation[key]} vs {test[key]}" for key in validation if validation[key] != test[key]]
    if differ:
        raise SweepError(f"{str(validation_dir)!r} and {str(test_dir)!r} store the weights differently "
                         f"({', '.join(differ)}): per-chip voltage needs both under one memory config")
    return per_chip_voltages(load_chips(validation_dir), load_chips(test_dir), min_accuracy)


def write_per_chip(chips: pd.DataFrame, path: str | Path) -> Path:
    """Write a :func:`per_chip_voltages` table to ``path`` as CSV, atomically; return the path."""
    with atomic_path(path) as tmp:
        chips.to_csv(tmp, index=False)
    return Path(path)


def format_per_chip(summary: pd.DataFrame, min_accuracy: float) -> str:
    """Printable lines for a :func:`summarize_per_chip` table."""
    lines = [f"per-chip voltage: each chip at its lowest swept voltage with validation PA >= "
             f"{min_accuracy:g}%, scored on test images:"]
    for row in summary.itertuples(index=False):
        fallback = (f"; {row.uncalibrated} kept it at no voltage and run at the highest swept one"
                    if row.uncalibrated else "")
        lines.append(f"  {row.config:<16} energy saving {100 * row.energy_saving:.1f}% (mean over chips), "
                     f"voltages {row.voltage_min:.3f}-{row.voltage_max:.3f} Vmin; test PA {row.test_pa_mean:.2f}% "
                     f"mean, {row.test_pa_min:.2f}% worst; {row.meets_test} of {row.chips} chips keep "
                     f"{min_accuracy:g}% on test{fallback}; {row.criterion} "
                     f"{'kept' if row.meets_criterion else 'NOT kept'} on test")
    return "\n".join(lines)
