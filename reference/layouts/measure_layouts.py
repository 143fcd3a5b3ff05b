"""Unprotected PA of a base model under both fault layouts (``arrays`` and ``neuralfuse-code``) at
several BERs, on the evaluation chips: the per-chip accuracies, a mean ± std table and a figure.

    OMP_NUM_THREADS=1 python reference/layouts/measure_layouts.py \\
        --base reference/resnet18-w025-cifar10.pt --dataset cifar10 \\
        --data-root .cache/cifar10-jpeg -o reference/layouts/resnet18-w025

Writes into OUTPUT: ``points/`` (one JSON per layout, BER and chip, written as it finishes: a rerun
resumes), ``chips.csv`` (one row per layout, BER, chip), ``table.csv`` and ``table.md`` (mean ± std,
min, max per layout and BER), ``pa-vs-ber.png``/``.svg`` and ``run.json`` (arguments, clean
accuracy, wall times). One torch thread.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import pandas as pd
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from characterization.atomic import atomic_path, write_json
from neuralfuse.checkpoint import load_base_model
from neuralfuse.chips import evaluation_chips
from neuralfuse.data import load_dataset
from neuralfuse.evaluation import chip_accuracies, clean_accuracies, load_batches
from neuralfuse.memory_format import preferred_memory_format
from neuralfuse.plots import save_figure
from sramsim import Deployment, MemoryConfig, OperatingPoint
from sramsim.layers import eval_mode
from sramsim.layouts import LAYOUTS


def measure(base_path: str, dataset: str, data_root: str | None, bers: list[float], chips: int,
            layouts: list[str], out: Path, batch_size: int) -> pd.DataFrame:
    """Measure every (layout, BER, chip) not yet in ``out/points``; return all of them, one row each."""
    base, meta = load_base_model(base_path)
    batches = load_batches(load_dataset(dataset, data_root, split="test"), batch_size,
                           memory_format=preferred_memory_format(base))
    points = out / "points"
    points.mkdir(parents=True, exist_ok=True)
    rows, clean = [], {}
    for layout in layouts:
        deployment = Deployment(base, bits=MemoryConfig.from_record(meta).bits, layout=layout)
        with eval_mode(base), deployment.quantized():
            clean[layout] = float(clean_accuracies(deployment, [batches])[0])
            todo = [(ber, chip) for ber in bers for chip in evaluation_chips(chips)]
            for ber, chip in tqdm(todo, desc=layout, unit="chip"):
                path = points / f"{layout}-ber{ber:g}-chip{chip}.json"
                if not path.is_file():
                    start = time.perf_counter()
                    pa = chip_accuracies(deployment, OperatingPoint.resolve(ber=ber), [chip], [batches])
                    write_json(path, {"layout": layout, "ber": ber, "chip": chip, "pa": float(pa[0, 0]),
                                      "seconds": time.perf_counter() - start})
                rows.append(json.loads(path.read_text()))
    write_json(out / "run.json", {
        "command": " ".join(["python", *sys.argv]), "base": base_path, "dataset": dataset,
        "samples": sum(len(y) for _, y in batches), "bits": MemoryConfig.from_record(meta).bits, "fault_model": "stuck-at",
        "tech": deployment.tech, "chips": chips, "bers": bers, "layouts": layouts, "clean_accuracy": clean,
        "torch_threads": torch.get_num_threads(),
        "chip_seconds": {name: sum(r["seconds"] for r in rows if r["layout"] == name) for name in layouts},
    })
    return pd.DataFrame(rows)


def summary_table(per_chip: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std, min and max of PA over chips, per layout and BER."""
    groups = per_chip.groupby(["layout", "ber"], sort=False).pa
    return pd.DataFrame({"chips": groups.size(), "pa_mean": groups.mean(), "pa_std": groups.std(ddof=1),
                         "pa_min": groups.min(), "pa_max": groups.max()}).reset_index()


def markdown_table(table: pd.DataFrame) -> str:
    """One row per BER, one column per layout: ``mean ± std (min-max)``."""
    layouts = list(table.layout.unique())
    lines = ["| BER | " + " | ".join(f"{name}: PA mean ± std (min–max), %" for name in layouts) + " |",
             "|---|" + "---|" * len(layouts)]
    for ber, rows in table.groupby("ber"):
        by_layout = rows.set_index("layout")
        cells = [f"{r.pa_mean:.2f} ± {r.pa_std:.2f} ({r.pa_min:.2f}–{r.pa_max:.2f})"
                 for r in (by_layout.loc[name] for name in layouts)]
        lines.append(f"| {100 * ber:g}% | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def pa_figure(per_chip: pd.DataFrame, table: pd.DataFrame, clean: dict[str, float], title: str) -> Figure:
    """PA vs BER, one line per layout (mean), its ± std band and every chip as a dot."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    for i, (layout, rows) in enumerate(table.groupby("layout", sort=False)):
        color, ber = f"C{i}", 100 * rows.ber
        axes.plot(ber, rows.pa_mean, marker="o", color=color, label=f"{layout}: PA mean")
        axes.fill_between(ber, rows.pa_mean - rows.pa_std, rows.pa_mean + rows.pa_std, color=color,
                          alpha=0.2, linewidth=0, label=f"{layout}: ± std over chips")
        chips = per_chip[per_chip.layout == layout]
        axes.scatter(100 * chips.ber + (i - 0.5) * 0.04, chips.pa, s=8, color=color, alpha=0.6)
    axes.axhline(next(iter(clean.values())), color="gray", linestyle="--", linewidth=0.8,
                 label="clean accuracy (quantized)")
    axes.set_xlabel("bit-error rate (% of faulty cells, stuck-at)")
    axes.set_ylabel("perturbed accuracy (%)")
    axes.set_title(title, fontsize=10)
    axes.set_ylim(0, 100)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="upper right")
    return figure


@click.command()
@click.option("--base", "base_path", type=click.Path(exists=True, dir_okay=False), required=True,
              help="Base-model checkpoint (from `neuralfuse train-base`).")
@click.option("--dataset", default="cifar10", show_default=True, help="Dataset name (test split).")
@click.option("--data-root", type=click.Path(exists=True, file_okay=False), default=None)
@click.option("--bers", default="0.005,0.01,0.02,0.03", show_default=True,
              help="Comma-separated bit-error rates (fractions of faulty cells).")
@click.option("--chips", type=click.IntRange(1), default=10, show_default=True)
@click.option("--layouts", default=",".join(LAYOUTS), show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=500, show_default=True)
@click.option("-o", "--output", type=click.Path(file_okay=False, writable=True), required=True)
def main(base_path: str, dataset: str, data_root: str | None, bers: str, chips: int, layouts: str,
         batch_size: int, output: str) -> None:
    """Measure PA under both layouts and write the tables and the figure into OUTPUT."""
    torch.set_num_threads(1)
    try:
        rates = [float(b) for b in bers.split(",")]
        names = [name.strip() for name in layouts.split(",")]
        for rate in rates:
            OperatingPoint.resolve(ber=rate)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--bers") from err
    unknown = [name for name in names if name not in LAYOUTS]
    if unknown:
        raise click.BadParameter(f"unknown layout {unknown[0]!r}: use {', '.join(LAYOUTS)}",
                                 param_hint="--layouts")
    out = Path(output)
    per_chip = measure(base_path, dataset, data_root, rates, chips, names, out, batch_size)
    run = json.loads((out / "run.json").read_text())
    table = summary_table(per_chip)
    for frame, name in ((per_chip, "chips.csv"), (table, "table.csv")):
        with atomic_path(out / name) as tmp:
            frame.to_csv(tmp, index=False)
    with atomic_path(out / "table.md") as tmp:
        tmp.write_text(markdown_table(table))
    title = (f"{Path(base_path).stem}, {run['samples']} test images, {chips} chips, "
             f"{run['bits']}-bit weights")
    save_figure(pa_figure(per_chip, table, run["clean_accuracy"], title), out / "pa-vs-ber")
    click.echo(markdown_table(table))
    click.echo(f"clean accuracy: {run['clean_accuracy']}; wrote {out}")


if __name__ == "__main__":
    main()
