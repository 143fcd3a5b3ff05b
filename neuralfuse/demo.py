"""The main job: NeuralFuse on the shipped default setup, from nothing but the package, in minutes.

:func:`run_demo` loads the default base model (``assets/default-base.pt``, a width-0.25 ResNet18
trained on the default CIFAR-10 subset) and the generator shipped with it
(``assets/default-generator/``, trained with EOPM by the command recorded in its ``config.json``
and described in ``assets/default-generator.md``), sweeps the supply voltage from Vmin down past
the generator's operating voltage with and without NeuralFuse, and writes into one folder:

- the sweep (``sweep.csv``, ``chips.csv``, ``sweep.json``, ``points/``; see :mod:`neuralfuse.tradeoff`);
- the plots ``pareto``, ``accuracy`` and ``curves`` (PNG and SVG; see :mod:`neuralfuse.plots`);
- ``summary.txt`` and ``summary.json``: the operating point, CA and PA with and without
  NeuralFuse, the recovery, the chip-to-chip standard errors, the energy saving.

The operating voltage is the one the shipped generator was trained at: chosen from the default
model's own measured robustness (where its PA drops by tens of points; see the asset's notes),
not the paper's 0.83 Vmin, which a small CPU-scale model barely notices. Like every sweep, the
demo resumes where it stopped when rerun into the same folder.
"""
from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from characterization.atomic import atomic_path, write_json
from neuralfuse.checkpoint import load_base_model, load_generator
from neuralfuse.data import fixed_subset, load_dataset
from neuralfuse.plots import write_sweep_plots
from neuralfuse.tradeoff import BASE, operating_points, pareto_front, parse_voltages, sweep
from sramsim.layouts import DEFAULT_LAYOUT

ASSETS = Path(__file__).parent / "assets"
BASE_CHECKPOINT = ASSETS / "default-base.pt"
GENERATOR_RUN = ASSETS / "default-generator"
NF = "neuralfuse"
"""Configuration name of the base model behind the shipped generator."""
DEFAULT_VOLTAGES = "0.76:1.00:0.02"
DEFAULT_CHIPS = 10
DEFAULT_SAMPLES = 1000
TOLERANCE = 5.0
"""Summary: the lowest voltage keeping mean PA within this many points of the base model's CA."""


def run_demo(out_dir: str | Path, *, voltages: Sequence[float] | None = None,
             chips: int = DEFAULT_CHIPS, samples: int | None = DEFAULT_SAMPLES,
             layout: str = DEFAULT_LAYOUT, progress: bool = True,
             device: torch.device | str | None = None) -> dict[str, Any]:
    """Run the demo into ``out_dir`` (see the module docstring); return the summary dict.

    ``voltages`` (× Vmin) default to 1.00 down to 0.76 in steps of 0.02; the generator's operating
    voltage is always added. ``samples`` test images (a fixed random subset; None: all 2,000) are
    evaluated on ``chips`` evaluation chips, under fault ``layout`` (see :mod:`sramsim.layouts`), on
    ``device`` (default: the CPU).
    """
    say = _reporter(progress)
    say("[1/4] loading the default base model, the default test set and the shipped generator")
    base, base_meta = load_base_model(BASE_CHECKPOINT)
    generator, gen_meta = load_generator(GENERATOR_RUN, base=base)
    operating_voltage = round(float(gen_meta["voltage"]), 4)
    voltages = tuple(sorted({*(voltages or parse_voltages(DEFAULT_VOLTAGES)), operating_voltage},
                            reverse=True))
    test_set = fixed_subset(load_dataset("default", split="test"), samples)
    command = json.loads((GENERATOR_RUN / "config.json").read_text()).get("command", "")
    say(f"      generator: {gen_meta['generator']}, trained with EOPM at {operating_voltage:.2f} Vmin "
        f"(BER {100 * gen_meta['ber']:.2f}%) by: {command}")

    n_points = len(voltages) * chips
    say(f"[2/4] sweeping {len(voltages)} voltages ({voltages[0]:.2f} to {voltages[-1]:.2f} Vmin) x "
        f"{chips} chips = {n_points} points, {len(test_set)} test images, with and without NeuralFuse")
    out_dir = Path(out_dir)
    table = sweep(base, test_set, voltages, generators={NF: generator}, chips=chips,
                  tech=gen_meta["tech"], fault_model=gen_meta["fault_model"], bits=gen_meta["bits"],
                  layout=layout, out_dir=out_dir, progress=progress, device=device,
                  provenance={"base": "neuralfuse/assets/default-base.pt",
                              "generator": "neuralfuse/assets/default-generator",
                              "dataset": "default", "samples": samples,
                              "command": " ".join(["neuralfuse", *sys.argv[1:]])})

    say("[3/4] drawing the plots")
    write_sweep_plots(table, out_dir, gen_meta["tech"])

    say("[4/4] writing the summary")
    per_chip = pd.read_csv(out_dir / "chips.csv")
    summary = summarize(table, per_chip, operating_voltage)
    summary.update(base_model={k: base_meta.get(k) for k in ("arch", "width", "dataset", "test_acc")},
                   generator={"architecture": gen_meta["generator"], "trained_at": operating_voltage,
                              "command": command},
                   samples=len(test_set), layout=layout, output=str(out_dir))
    write_json(out_dir / "summary.json", summary)
    with atomic_path(out_dir / "summary.txt") as tmp:
        tmp.write_text(format_summary(summary) + "\n")
    return summary


def summarize(table: pd.DataFrame, per_chip: pd.DataFrame, voltage: float) -> dict[str, Any]:
    """The demo's findings at ``voltage`` from a sweep of configurations ``base`` and ``neuralfuse``.

    The margin is NeuralFuse's mean PA minus the base model's; its standard error combines both
    chip-to-chip standard errors, sqrt(sem_base² + sem_nf²) (a paired estimate over the same
    chips, also given, is usually smaller). ``beats`` is whether the margin exceeds it.
    """
    at = table[table.voltage == voltage].set_index("config")
    rows = {name: at.loc[name] for name in (BASE, NF)}
    paired = per_chip[per_chip.voltage == voltage].pivot(index="chip", columns="config", values="pa")
    difference = paired[NF] - paired[BASE]
    margin = float(rows[NF].pa_mean - rows[BASE].pa_mean)
    combined = math.hypot(rows[BASE].pa_sem, rows[NF].pa_sem)
    within = operating_points(table, max(0.0, float(rows[BASE].ca) - TOLERANCE))
    front = table[pareto_front(table)]
    return {
        "operating_point": {"voltage": voltage, "ber": float(rows[BASE].ber), "chips": int(rows[BASE].chips)},
        **{key: {"ca": float(row.ca), "pa_mean": float(row.pa_mean), "pa_std": float(row.pa_std),
                 "pa_sem": float(row.pa_sem), "energy_saving": float(row.energy_saving)}
           for key, row in (("without_nf", rows[BASE]), ("with_nf", rows[NF]))},
        "rp": margin,
        "margin_standard_error": combined,
        "paired_standard_error": float(difference.std(ddof=1) / math.sqrt(len(difference))),
        "beats": bool(margin > combined),
        "generator_access_overhead": float(rows[NF].accesses_generator / rows[NF].accesses_base),
        "pareto_front": {name: sorted(group.voltage.tolist(), reverse=True)
                         for name, group in front.groupby("config", sort=False)},
        "within_tolerance": {"tolerance": TOLERANCE, "min_accuracy": within["min_accuracy"],
                             **{key: within["per_config"][name]
                                for key, name in (("without_nf", BASE), ("with_nf", NF))}},
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The text of ``summary.txt``."""
    point, base, nf = summary["operating_point"], summary["without_nf"], summary["with_nf"]
    verdict = "exceeds" if summary["beats"] else "does NOT exceed"
    lines = [
        f"NeuralFuse demo: {summary['base_model']['arch']} (width {summary['base_model']['width']}) "
        f"on the default CIFAR-10 subset ({summary['samples']} test images), "
        f"{point['chips']} evaluation chips, {summary.get('layout', DEFAULT_LAYOUT)} fault layout",
        f"generator: {summary['generator']['architecture']}, trained with EOPM at "
        f"{summary['generator']['trained_at']:.2f} Vmin by: {summary['generator']['command']}",
        "",
        f"at the operating point {point['voltage']:.2f} Vmin (BER {100 * point['ber']:.2f}%):",
        f"  {'':<20}{'CA (%)':>8}{'PA (%) mean ± std':>22}{'energy saving':>16}",
    ]
    for label, row in (("base model alone", base), ("with NeuralFuse", nf)):
        pa = f"{row['pa_mean']:.2f} ± {row['pa_std']:.2f}"
        lines.append(f"  {label:<20}{row['ca']:>8.2f}{pa:>22}{100 * row['energy_saving']:>15.1f}%")
    lines += [
        f"  recovery RP = {summary['rp']:+.2f} points; chip-to-chip standard error of that margin "
        f"{summary['margin_standard_error']:.2f} (paired: {summary['paired_standard_error']:.2f}): "
        f"the margin {verdict} it",
        "",
        f"lowest-energy voltage keeping mean PA >= {summary['within_tolerance']['min_accuracy']:.2f}% "
        f"(base CA - {summary['within_tolerance']['tolerance']:g} points):",
    ]
    for label, key in (("base model alone", "without_nf"), ("with NeuralFuse", "with_nf")):
        row = summary["within_tolerance"][key]
        lines.append(f"  {label:<20}" + ("none in the sweep" if row is None else
                     f"{row['voltage']:.2f} Vmin, PA {row['pa_mean']:.2f}%, "
                     f"energy saving {100 * row['energy_saving']:.1f}%"))
    on_front = summary["pareto_front"].get(NF, [])
    lines += [
        "",
        f"energy: the generator's own weight reads cost {100 * summary['generator_access_overhead']:.1f}% "
        "of the base model's (Eq. 6 charges them at Vmin); NeuralFuse points on the Pareto front: "
        + (", ".join(f"{v:.2f}" for v in on_front) + " Vmin" if on_front else "none"),
    ]
    if not on_front:
        lines.append("  (for this small base model, running it alone at a higher voltage is cheaper at "
                     "every accuracy; the overhead shrinks as the base model grows)")
    lines += ["", f"files: {summary['output']}/sweep.csv, pareto.png/svg, accuracy.png/svg, "
              "curves.png/svg, summary.json"]
    return "\n".join(lines)


def _reporter(progress: bool):
    def say(message: str) -> None:
        if progress:
            print(message, file=sys.stderr, flush=True)
    return say
