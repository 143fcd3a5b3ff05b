"""A two-panel figure of a technology: BER (log scale, measured points marked) and energy per
access. Uses matplotlib's object API (no pyplot state), so it works headless and in notebooks."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from characterization.atomic import atomic_path
from characterization.model import VoltageModel


def plot_curves(model: VoltageModel, n_points: int = 200) -> Figure:
    """Draw ``model``'s fitted curves over its range with the file's measured points.

    The BER curve is dashed where it continues beyond the measured points.

    >>> fig = plot_curves(characterization.load("14nm-512x64"))    # doctest: +SKIP
    >>> fig.savefig("14nm.png")                                    # doctest: +SKIP
    """
    figure = Figure(figsize=(9, 3.6), layout="constrained")
    FigureCanvasAgg(figure)
    ber_axes, energy_axes = figure.subplots(1, 2)
    v = np.linspace(*model.v_range, n_points)
    panels = ((ber_axes, "ber", model.ber, "bit-error rate"),
              (energy_axes, "energy", model.energy_per_access, "energy per access / at Vmin"))
    for axes, column, curve, label in panels:
        measured = model.points.dropna(subset=[column])
        lo, hi = measured.v_over_vmin.min(), measured.v_over_vmin.max()
        inside = (v >= lo) & (v <= hi)
        axes.plot(v[inside], curve(v[inside]), color="C0", label="fitted model")
        for beyond in (v <= lo, v >= hi):
            if beyond.sum() > 1:
                axes.plot(v[beyond], curve(v[beyond]), color="C0", linestyle="--")
        axes.plot(measured.v_over_vmin, measured[column], "o", color="C3", label="data points")
        axes.set_xlabel("V / Vmin")
        axes.set_ylabel(label)
        axes.grid(True, which="both", alpha=0.3)
    ber_axes.set_yscale("log")
    ber_axes.legend()
    ber_axes.set_title(f"{model.name}: mu={model.mu:.3f}, sigma={model.sigma:.3f}")
    energy_axes.set_title(f"E(v) = v^{model.alpha:.2f}")
    return figure


def check_image_path(path: str | os.PathLike[str]) -> None:
    """Raise ``ValueError`` unless matplotlib can write an image format named by ``path``'s suffix."""
    formats = FigureCanvasAgg(Figure()).get_supported_filetypes()
    suffix = Path(path).suffix.lstrip(".").lower()
    if suffix not in formats:
        raise ValueError(f"cannot write a plot to {str(path)!r}: the suffix must be one of "
                         f"{', '.join(sorted(formats))}")


def save_curves_plot(model: VoltageModel, path: str | os.PathLike[str], n_points: int = 200) -> None:
    """Write :func:`plot_curves`'s figure to ``path`` atomically (format from the suffix)."""
    check_image_path(path)
    figure = plot_curves(model, n_points)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=150)
