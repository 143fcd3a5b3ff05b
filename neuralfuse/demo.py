"""The main job: NeuralFuse on a shipped base model and generator, from nothing but the package, in minutes.

:func:`run_demo` loads one of the shipped setups (:data:`neuralfuse.shipped.SETUPS`): a base model (``base.pt``) and
the generator trained for it with EOPM (``generator/``, an EOPM run directory whose ``config.json``
records the command; both described in the setup's ``*.md`` files under ``assets/``), sweeps the
supply voltage from Vmin down past the generator's operating voltage with and without NeuralFuse,
on the default CIFAR-10 test split (2,000 test images the base models never trained on), and
writes into one folder:

- the sweep (``sweep.csv``, ``chips.csv``, ``sweep.json``, ``points/``; see :mod:`neuralfuse.tradeoff`);
- the plots ``pareto``, ``accuracy`` and ``curves`` (PNG and SVG; see :mod:`neuralfuse.plots`);
- ``summary.txt`` and ``summary.json``, which lead with the answer a user wants: the weight-memory
  energy saved at accuracy floors, with and without NeuralFuse; then, where the setup ships a
  robust base model (the same architecture trained with GroupNorm and weight clipping), "which
  protection" pays at the lead floor: the base model alone, with NeuralFuse, or the robust model
  (measured at the few voltages a scan from the base model's voltage needs, in ``robust/``:
  :mod:`neuralfuse.floor_scan`; compared as :mod:`neuralfuse.strategies` does, with a bootstrap over
  the chips); then CA and PA at the operating point, the recovery and the chip-to-chip standard errors.

Setups:

- ``vgg11`` (default): the full-width VGG11 of ``reference/vgg11/``, trained on 45,000 CIFAR-10
  training images, and a UNetS generator, whose weight reads are about 3% of the model's: the
  paper's regime.
- ``resnet18-w0.25``: a ResNet18 at a quarter width trained on the default subset, with a UNetS
  that costs 26% of its reads: small and fast, where running the model alone at a higher voltage
  is cheaper.

The operating voltage is the one the shipped generator was trained at, chosen from its base model's
own measured robustness (where PA drops into the 35-50% band), not assumed. Like every sweep, the
demo resumes where it stopped when rerun into the same folder. ``precision`` (fp32, or bf16: see
:mod:`neuralfuse.precision`) is the arithmetic of every forward pass, recorded in ``sweep.json``
and the summary. The weights are stored as the shipped generator was trained (its
:class:`sramsim.MemoryConfig`), but for the ``layout`` and ``storage`` format given; the summary
records the config as ``memory``.
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
from neuralfuse.criteria import MEAN, Criterion, parse_criterion
from neuralfuse.data import fixed_subset, load_dataset
from neuralfuse.evaluation import inherited_memory
from neuralfuse.floor_scan import scan_floor
from neuralfuse.plots import write_sweep_plots
from neuralfuse import shipped
from neuralfuse.precision import DEFAULT_PRECISION
from neuralfuse.shipped import DEFAULT_SETUP
from neuralfuse.strategies import Strategy, compare_strategies
from neuralfuse.strategy_report import format_which_protection, which_protection
from neuralfuse.tradeoff import BASE, operating_points, pareto_front, parse_voltages, sweep
from sramsim.accounting import operating_voltage
from sramsim.memory import MemoryConfig
from sramsim.storage import DEFAULT_STORAGE

NF = "neuralfuse"
"""Configuration name of the base model behind the shipped generator."""
ROBUST = "robust"
"""Subfolder of the demo's output holding the robust base model's scan."""
FLOOR_DROPS = (2.0, 5.0, 10.0, 20.0)
"""Accuracy floors of the summary, in points below the base model's clean accuracy."""
LEAD_DROP = 5.0
"""The floor the summary leads with when no ``min_accuracy`` is given (points below the base CA)."""


def run_demo(out_dir: str | Path, *, setup: str = DEFAULT_SETUP, voltages: Sequence[float] | None = None,
             chips: int | None = None, samples: int | None = None, min_accuracy: float | None = None,
             criteria: Sequence[Criterion | str] = (MEAN,), layout: str | None = None,
             storage: str | None = None, progress: bool = True, device: torch.device | str | None = None,
             precision: str = DEFAULT_PRECISION) -> dict[str, Any]:
    """Run the demo of ``setup`` into ``out_dir`` (see the module docstring); return the summary dict.

    ``voltages`` (× Vmin), ``chips`` and ``samples`` (test images, a fixed random subset of the
    default test split's 2,000) default to the setup's; the generator's operating voltage is always
    added. The weights are stored as the generator was trained, but for ``layout``
    (:mod:`sramsim.layouts`) and ``storage`` (:mod:`sramsim.storage`) when given; ``device``
    defaults to the CPU; forward passes run at ``precision``.
    The summary leads with ``min_accuracy`` (PA in %, default: the base CA minus
    :data:`LEAD_DROP` points) among its accuracy floors, judged by each of ``criteria``
    (:mod:`neuralfuse.criteria`; the first is the lead).
    """
    chosen = shipped.setup(setup)
    say = _reporter(progress)
    say(f"[1/5] loading the {chosen.name} setup ({chosen.description}), the default test split and "
        "the shipped generator")
    base, base_meta = load_base_model(chosen.base)
    generator, gen_meta = load_generator(chosen.generator_run, base=base)
    memory = inherited_memory({"the shipped generator": gen_meta}, layout=layout, storage=storage)
    operating_voltage = _operating_voltage(gen_meta)
    voltages = tuple(sorted({*(voltages or parse_voltages(chosen.voltages)), operating_voltage},
                            reverse=True))
    chips, samples = chips or chosen.chips, samples or chosen.samples
    test_set = fixed_subset(load_dataset("default", split="test"), samples)
    command = json.loads((chosen.generator_run / "config.json").read_text()).get("command", "")
    say(f"      generator: {gen_meta['generator']}, trained with EOPM at {operating_voltage:.3f} Vmin "
        f"(BER {100 * gen_meta['ber']:.2f}%) by: {command}")

    n_points = len(voltages) * chips
    say(f"[2/5] sweeping {len(voltages)} voltages ({voltages[0]:.2f} to {voltages[-1]:.2f} Vmin) x "
        f"{chips} chips = {n_points} points, {len(test_set)} test images, with and without NeuralFuse")
    out_dir = Path(out_dir)
    assets = f"neuralfuse/assets/{chosen.folder.name}"
    table = sweep(base, test_set, voltages, generators={NF: generator}, chips=chips, memory=memory,
                  out_dir=out_dir, progress=progress, device=device, precision=precision,
                  provenance={"setup": chosen.name, "base": f"{assets}/base.pt",
                              "generator": f"{assets}/generator",
                              "dataset": "default", "samples": samples,
                              "command": " ".join(["neuralfuse", *sys.argv[1:]])})

    say("[3/5] drawing the plots")
    write_sweep_plots(table, out_dir, memory.tech)

    per_chip = pd.read_csv(out_dir / "chips.csv")
    summary = summarize(table, per_chip, operating_voltage, min_accuracy, criteria)
    lead = next(f for f in summary["floors"] if f["lead"])
    if chosen.robust_base is not None:
        say(f"[4/5] which protection at the lead floor {lead['min_accuracy']:.1f}%: the shipped "
            f"{chosen.robust_name}, scanned from the base model's voltage")
        summary["which_protection"] = _which_protection(
            chosen, lead, voltages, test_set, out_dir, say, chips=chips, memory=memory,
            progress=progress, device=device, precision=precision)
    say("[5/5] writing the summary")
    summary.update(setup=chosen.name, description=chosen.description,
                   base_model={k: base_meta.get(k) for k in ("arch", "width", "dataset", "test_acc")},
                   generator={"architecture": gen_meta["generator"], "trained_at": operating_voltage,
                              "command": command},
                   samples=len(test_set), memory=memory.to_dict(), precision=precision, output=str(out_dir))
    write_json(out_dir / "summary.json", summary)
    with atomic_path(out_dir / "summary.txt") as tmp:
        tmp.write_text(format_summary(summary) + "\n")
    return summary


def summarize(table: pd.DataFrame, per_chip: pd.DataFrame, voltage: float,
              min_accuracy: float | None = None,
              criteria: Sequence[Criterion | str] = (MEAN,)) -> dict[str, Any]:
    """The demo's findings from a sweep of configurations ``base`` and ``neuralfuse``.

    ``floors``: for each of ``criteria`` (the first leads; ``per_chip`` must cover every voltage
    for any but the mean) and accuracy floors :data:`FLOOR_DROPS` points below the base model's CA
    and ``min_accuracy`` (the lead floor; default: CA - :data:`LEAD_DROP`), the lowest-energy
    swept voltage that keeps the floor under the criterion, with and without NeuralFuse (None:
    none does); each floor names its ``criterion``.
    At the operating ``voltage``: CA and PA of both, and the margin RP = NeuralFuse's mean PA minus
    the base model's; its standard error combines both chip-to-chip standard errors,
    sqrt(sem_base² + sem_nf²) (a paired estimate over the same chips, also given, is usually
    smaller). ``beats`` is whether the margin exceeds it.
    """
    at = table[table.voltage == voltage].set_index("config")
    rows = {name: at.loc[name] for name in (BASE, NF)}
    paired = per_chip[per_chip.voltage == voltage].pivot(index="chip", columns="config", values="pa")
    difference = paired[NF] - paired[BASE]
    margin = float(rows[NF].pa_mean - rows[BASE].pa_mean)
    combined = math.hypot(rows[BASE].pa_sem, rows[NF].pa_sem)
    clean = float(rows[BASE].ca)
    lead = clean - LEAD_DROP if min_accuracy is None else float(min_accuracy)
    front = table[pareto_front(table)]
    floors = sorted({max(0.0, round(v, 2)) for v in (lead, *(clean - d for d in FLOOR_DROPS))}, reverse=True)
    return {
        "floors": [_floor(table, per_chip, floor, floor == lead, parse_criterion(criterion))
                   for criterion in criteria for floor in floors],
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
    }


def _floor(table: pd.DataFrame, per_chip: pd.DataFrame, floor: float, lead: bool,
           criterion: Criterion) -> dict[str, Any]:
    chosen = operating_points(table, floor, criterion, per_chip)["per_config"]
    keep = ("voltage", "ber", "pa_mean", "pa_std", "energy_saving")
    return {"min_accuracy": floor, "lead": lead, "criterion": criterion.label,
            **{key: None if chosen.get(name) is None else {k: chosen[name][k] for k in keep}
               for key, name in (("without_nf", BASE), ("with_nf", NF))}}


def format_summary(summary: dict[str, Any]) -> str:
    """The text of ``summary.txt``: the energy saved at accuracy floors first, then the details."""
    point, base, nf = summary["operating_point"], summary["without_nf"], summary["with_nf"]
    lead = next(f for f in summary["floors"] if f["lead"])
    criteria = {label: parse_criterion(label) for label in
                dict.fromkeys(f.get("criterion", MEAN.label) for f in summary["floors"])}

    def saving(row: dict[str, Any] | None) -> str:
        if row is None:
            return "no swept voltage keeps it"
        energy = 100 * row["energy_saving"]
        what = f"saves {energy:.1f}%" if energy >= 0 else f"costs {-energy:.1f}% more"
        return f"{what} at {row['voltage']:.3f} Vmin"

    drop = summary["without_nf"]["ca"] - lead["min_accuracy"]
    memory = MemoryConfig.from_record(summary)   # a summary written before memory configs: its layout
    storage = "" if memory.storage == DEFAULT_STORAGE else f"{memory.storage} storage, "
    lines = [
        f"NeuralFuse demo, setup {summary.get('setup', '?')}: {summary.get('description', '')}; "
        f"{summary['samples']} test images x {point['chips']} evaluation chips, "
        f"{storage}{memory.layout} fault layout, {summary.get('precision', DEFAULT_PRECISION)} arithmetic",
        "",
        f"At an accuracy floor of {lead['min_accuracy']:.1f}% "
        f"({criteria[lead.get('criterion', MEAN.label)].describe()}; the base model's CA minus "
        f"{drop:.1f} points), the weight memory {saving(lead['without_nf'])} with the base model "
        f"alone, and {saving(lead['with_nf'])} with NeuralFuse (energy against Vmin).",
    ]
    for label, criterion in criteria.items():   # one table per criterion
        title = f"floor ({criterion.describe()})"
        width = max(17, len(title) + 1)
        lines += [
            "",
            f"energy at each accuracy floor (the lowest-energy swept voltage {criterion.condition()}; "
            "Eq. 6, the generator's own reads charged at Vmin):",
            f"  {title:<{width}}{'base model alone':<36}{'with NeuralFuse':<36}",
        ]
        for floor in summary["floors"]:
            if floor.get("criterion", MEAN.label) == label:
                mark = "> " if floor["lead"] else "  "
                lines.append(f"{mark}{floor['min_accuracy']:>6.1f}%{'':<{width - 7}}"
                             f"{saving(floor['without_nf']):<36}{saving(floor['with_nf'])}")
    if "which_protection" in summary:
        protection = summary["which_protection"]
        scanned = ", ".join(f"{v:.3f}" for v in protection["scanned_voltages"])
        lines += ["", format_which_protection(protection),
                  f"  ({protection['strategies'][-1]['name']}: the shipped {protection['robust_base']}, "
                  f"measured at {scanned} Vmin, scanned from the base model's voltage; every protection "
                  "side by side: reference/strategies/ in the source repository)"]
    lines += [
        "",
        f"generator: {summary['generator']['architecture']}, trained with EOPM at "
        f"{summary['generator']['trained_at']:.3f} Vmin by: {summary['generator']['command']}",
        f"at its operating point {point['voltage']:.3f} Vmin (BER {100 * point['ber']:.2f}%):",
        f"  {'':<20}{'CA (%)':>8}{'PA (%) mean ± std':>22}{'energy saving':>16}",
    ]
    for label, row in (("base model alone", base), ("with NeuralFuse", nf)):
        pa = f"{row['pa_mean']:.2f} ± {row['pa_std']:.2f}"
        lines.append(f"  {label:<20}{row['ca']:>8.2f}{pa:>22}{100 * row['energy_saving']:>15.1f}%")
    verdict = "exceeds" if summary["beats"] else "does NOT exceed"
    on_front = summary["pareto_front"].get(NF, [])
    lines += [
        f"  recovery RP = {summary['rp']:+.2f} points; chip-to-chip standard error of that margin "
        f"{summary['margin_standard_error']:.2f} (paired: {summary['paired_standard_error']:.2f}): "
        f"the margin {verdict} it",
        "",
        f"energy: the generator's own weight reads cost {100 * summary['generator_access_overhead']:.1f}% "
        "of the base model's; NeuralFuse points on the Pareto front: "
        + (", ".join(f"{v:.3f}" for v in on_front) + " Vmin" if on_front else "none"),
    ]
    if not on_front:
        lines.append("  (here running the base model alone at a higher voltage is cheaper at every accuracy)")
    lines += ["", f"files: {summary['output']}/sweep.csv, pareto.png/svg, accuracy.png/svg, "
              "curves.png/svg, summary.json" + (f", {ROBUST}/ (the scan)" if "which_protection" in summary else "")]
    return "\n".join(lines)


def _which_protection(chosen: shipped.DemoSetup, lead: dict[str, Any], voltages: Sequence[float],
                      test_set, out_dir: Path, say, **sweep_options: Any) -> dict[str, Any]:
    """The setup's strategies at the ``lead`` floor (a summary floor), on the demo's chips and
    images: the base model alone and with NeuralFuse (from the demo's sweep) and the shipped
    robust base model (scanned into ``out_dir/robust``; :mod:`neuralfuse.floor_scan`)."""
    robust, _ = load_base_model(chosen.robust_base)
    base_answer = lead["without_nf"]
    start = base_answer["voltage"] if base_answer is not None else max(voltages)
    scanned = scan_floor(robust, test_set, voltages, start=start, floor=lead["min_accuracy"],
                         criterion=lead["criterion"], out_dir=out_dir / ROBUST, **sweep_options,
                         on_step=lambda v, kept: say(f"      {v:.4f} Vmin: {'keeps' if kept else 'loses'} the floor"))
    comparison = compare_strategies(
        [Strategy("base model alone", out_dir), Strategy("with NeuralFuse", out_dir, config=NF),
         Strategy(chosen.robust_name, out_dir / ROBUST)],
        drops=(), floors=(lead["min_accuracy"],), criteria=(lead["criterion"],))
    return {**which_protection(comparison, comparison.floors[0]), "robust_base": chosen.robust_base.name,
            "scanned_voltages": sorted(scanned.voltage.tolist(), reverse=True)}


def _operating_voltage(gen_meta: dict[str, Any]) -> float:
    """The voltage (× Vmin, 4 decimals) where the technology's curve gives the BER the generator was
    trained at. The BER, not a recorded voltage, is what the generator saw: a generator trained at
    a voltage under an earlier calibration of the curve keeps its BER and moves with the curve."""
    return round(float(operating_voltage(ber=gen_meta["ber"], tech=MemoryConfig.from_record(gen_meta).tech)), 4)


def _reporter(progress: bool):
    def say(message: str) -> None:
        if progress:
            print(message, file=sys.stderr, flush=True)
    return say
