"""Figures of a sweep table (:mod:`neuralfuse.tradeoff`) and of EOPM training, drawn with matplotlib's object API.

No pyplot state: every function returns a :class:`matplotlib.figure.Figure` on an Agg canvas, so
they work headless and display in notebooks; :func:`save_figure` writes PNG and SVG atomically.

- :func:`pareto_figure`: perturbed accuracy vs energy saving, one series per configuration, the
  Pareto front marked (the paper's Fig. 1b and Fig. 5);
- :func:`accuracy_figure`: perturbed accuracy vs voltage with ± std bands and clean accuracy;
- the technology's BER and energy curves (Fig. 2) are :func:`characterization.plot.plot_curves`;
- :func:`learning_curve_figure`: loss and accuracies per epoch of an EOPM run (its ``metrics.csv``),
  written by :func:`write_learning_curve`;
- :func:`strategies_figure`: energy saved vs accuracy floor, one line per strategy and one panel
  per criterion (:mod:`neuralfuse.strategies`).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import characterization
from characterization.atomic import atomic_path
from characterization.plot import plot_curves
from neuralfuse.tradeoff import pareto_front

if TYPE_CHECKING:
    from neuralfuse.strategies import Comparison

FORMATS = ("png", "svg")


def _figure(size: tuple[float, float]) -> Figure:
    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _label(name: str, generator: str) -> str:
    if not generator:
        return f"{name} (no NeuralFuse)"
    return name if name == generator else f"{name} ({generator})"


def pareto_figure(table: pd.DataFrame) -> Figure:
    """Mean PA (± std over chips) vs energy saving, one series per configuration.

    Each series connects its voltages; the Pareto front over all rows (no other point saves more
    energy at a higher PA) is drawn as a dashed black line through circled points, each labelled with
    its voltage.
    """
    figure = _figure((7.5, 5))
    axes = figure.subplots()
    for i, (name, rows) in enumerate(table.groupby("config", sort=False)):
        rows = rows.sort_values("energy_saving")
        axes.errorbar(100 * rows.energy_saving, rows.pa_mean, yerr=rows.pa_std, color=f"C{i}",
                      marker="o", markersize=4, capsize=2, linewidth=1.2,
                      label=_label(name, rows.generator.iloc[0]))
    front = table[pareto_front(table)].sort_values("energy_saving")
    axes.plot(100 * front.energy_saving, front.pa_mean, color="black", linestyle="--", linewidth=1,
              alpha=0.6, zorder=3)
    axes.scatter(100 * front.energy_saving, front.pa_mean, s=90, facecolors="none",
                 edgecolors="black", linewidths=1.2, zorder=4, label="Pareto front")
    for _, row in front.iterrows():
        axes.annotate(f"{row.voltage:.2f}", (100 * row.energy_saving, row.pa_mean), fontsize=7,
                      textcoords="offset points", xytext=(4, 5))
    axes.set_xlabel("weight-memory energy saving (%)")
    axes.set_ylabel("perturbed accuracy (%), mean ± std over chips")
    axes.set_title("accuracy vs energy (labels: V / Vmin)")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="lower left")
    return figure


def accuracy_figure(table: pd.DataFrame) -> Figure:
    """Mean PA vs voltage with a ± std band per configuration; CA as a dashed line of its colour."""
    figure = _figure((7.5, 4.5))
    axes = figure.subplots()
    for i, (name, rows) in enumerate(table.groupby("config", sort=False)):
        rows = rows.sort_values("voltage")
        color = f"C{i}"
        axes.plot(rows.voltage, rows.pa_mean, marker="o", markersize=3, color=color,
                  label=f"{_label(name, rows.generator.iloc[0])}: PA")
        axes.fill_between(rows.voltage, rows.pa_mean - rows.pa_std, rows.pa_mean + rows.pa_std,
                          color=color, alpha=0.2, linewidth=0)
        axes.axhline(rows.ca.iloc[0], color=color, linestyle="--", linewidth=0.8,
                     label=f"{name}: CA")
    axes.set_xlabel("weight-memory supply voltage (V / Vmin)")
    axes.set_ylabel("accuracy (%)")
    axes.set_title(f"accuracy vs voltage (band: ± std over {int(table.chips.max())} chips)")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    return figure


def learning_curve_figure(frame: pd.DataFrame) -> Figure:
    """Loss terms (left) and accuracies (right) per epoch of an EOPM run's metrics."""
    figure = _figure((10, 3.8))
    ax_loss, ax_acc = figure.subplots(1, 2)
    ax_loss.plot(frame.epoch, frame.loss, marker="o", label="EOPM loss")
    ax_loss.plot(frame.epoch, frame.clean_loss, marker=".", label="clean CE")
    ax_loss.plot(frame.epoch, frame.perturbed_loss, marker=".", label="perturbed CE (mean)")
    ax_loss.set(xlabel="epoch", ylabel="training loss")
    for column, label in (("train_clean_acc", "train clean"), ("train_perturbed_acc", "train perturbed"),
                          ("val_ca", "validation CA"), ("val_pa_mean", "validation PA")):
        if column in frame:
            ax_acc.plot(frame.epoch, frame[column], marker=".", label=label)
    if "val_base_pa_mean" in frame:
        ax_acc.plot(frame.epoch, frame.val_base_ca, linestyle=":", color="gray",
                    label="validation CA, base model alone")
        ax_acc.plot(frame.epoch, frame.val_base_pa_mean, linestyle="--", color="gray",
                    label="validation PA, base model alone")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return figure


def strategies_figure(comparison: Comparison) -> Figure:
    """Energy saved vs accuracy floor, one line per strategy (dashed: each chip at its own voltage)
    with its bootstrap percentile interval as a band, one panel per criterion (criteria that are
    the same condition on these chips share one). A strategy that keeps a floor at no voltage has
    no point there."""
    criteria = comparison.shown_criteria()
    figure = _figure((4.6 * len(criteria) + 1.0, 4.2))
    panels = figure.subplots(1, len(criteria), sharey=True, squeeze=False)[0]
    level = f"{100 * comparison.bootstrap.level:g}%"
    for axes, criterion in zip(panels, criteria):
        rows = comparison.table[comparison.table.criterion == criterion.label]
        for i, m in enumerate(comparison.strategies):
            mine = rows[rows.strategy == m.strategy.name].sort_values("floor")
            color = f"C{i % 10}"
            axes.plot(mine.floor, 100 * mine.energy_saving, marker="o", markersize=3, color=color,
                      linestyle="--" if m.strategy.per_chip else "-", label=m.strategy.name)
            axes.fill_between(mine.floor, 100 * mine.energy_saving_low, 100 * mine.energy_saving_high,
                              color=color, alpha=0.15, linewidth=0)
        axes.set_title(comparison.title(criterion), fontsize=9)
        axes.set_xlabel(f"accuracy floor (PA %; {comparison.reference} CA {comparison.reference_ca:.1f}%)")
        axes.invert_xaxis()
        axes.grid(True, alpha=0.3)
    panels[0].set_ylabel(f"weight-memory energy saved (%), {level} bootstrap band")
    panels[0].legend(fontsize=8, loc="upper left")
    figure.suptitle(f"which protection pays: energy saved at each floor ({len(comparison.chips)} chips)",
                    fontsize=10)
    return figure


def save_figure(figure: Figure, stem: str | os.PathLike[str], dpi: int = 150,
                formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write ``figure`` to ``stem``.<format> for each of ``formats``, each atomically; return the paths."""
    paths = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=fmt, dpi=dpi)
        paths.append(path)
    return paths


def write_learning_curve(metrics: pd.DataFrame, run_dir: str | os.PathLike[str]) -> Path:
    """Write :func:`learning_curve_figure` of an EOPM run's ``metrics`` to RUN_DIR/learning_curve.png;
    return the path. The ``on_epoch`` callback of :func:`neuralfuse.eopm.train` that the command line
    passes."""
    return save_figure(learning_curve_figure(metrics), Path(run_dir) / "learning_curve", dpi=100,
                       formats=("png",))[0]


def write_sweep_plots(table: pd.DataFrame, folder: str | os.PathLike[str], tech: str) -> list[Path]:
    """Write the sweep's figures into ``folder`` as PNG and SVG; return the paths.

    ``pareto``: :func:`pareto_figure`; ``accuracy``: :func:`accuracy_figure`; ``curves``: the BER
    and energy curves of technology ``tech`` (:func:`characterization.plot.plot_curves`).
    """
    folder = Path(folder)
    figures = {"pareto": pareto_figure(table), "accuracy": accuracy_figure(table),
               "curves": plot_curves(characterization.load(tech))}
    return [path for name, figure in figures.items() for path in save_figure(figure, folder / name)]
