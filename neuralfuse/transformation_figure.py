"""What a generator does to its inputs: clean x, F(x) and the amplified difference |F(x) - x| (as the
paper's Figures 16-17), as a grid of images drawn with matplotlib's object API.

    x, labels = class_examples(test_set, per_class=2)
    figure = transformation_figure(generator, x, labels, test_set.info.classes)
    save_transformation_figure(figure, "transformation.png")

Rows: clean images, F(x), |F(x) - x| times an amplification (by default the one that shows the
99th percentile of the differences at full brightness; the figure says which). Columns: ``per_class`` images of
every class, the first ones of each class in the dataset's order, so the same call draws the same
images everywhere.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.utils.data import Dataset

from characterization.atomic import atomic_path
from characterization.plot import check_image_path
from characterization.validation import check_scalar
from sramsim.layers import eval_mode

PANEL_INCHES = 0.8
"""Side of one image panel, in inches; a figure is ``columns * PANEL_INCHES`` wide."""
TITLE_INCHES = 0.6
"""Height of the figure's title band, in inches, above the three rows of panels."""
ROWS = ("x (clean)", "F(x)", "|F(x) - x|")
BRIGHT_QUANTILE = 0.99
"""The default amplification shows this quantile of the differences at full brightness."""


def class_examples(dataset: Dataset, per_class: int = 2) -> tuple[Tensor, Tensor]:
    """(images, labels) of the first ``per_class`` images of each class in ``dataset``, by class."""
    check_scalar(per_class, "per_class", int, min_val=1)
    chosen: dict[int, list[Tensor]] = {}
    for i in range(len(dataset)):
        image, label = dataset[i]
        picked = chosen.setdefault(int(label), [])
        if len(picked) < per_class:
            picked.append(image)
    labels = sorted(chosen)
    return (torch.stack([image for label in labels for image in chosen[label]]),
            torch.tensor([label for label in labels for _ in chosen[label]]))


def transformation_figure(generator: nn.Module, x: Tensor, labels: Tensor, classes: Sequence[str],
                          amplification: float | None = None, name: str | None = None) -> Figure:
    """The grid of ``x`` (inputs in [-1, 1]), ``generator(x)`` and ``amplification * |F(x) - x|``,
    one column per image labelled with its class; ``amplification`` defaults to the factor that
    takes the :data:`BRIGHT_QUANTILE` quantile of the differences to full brightness. The title names the generator ``name``."""
    with eval_mode(generator), torch.inference_mode():
        fx = generator(x)
    difference = (fx - x).abs() / 2          # in display units: [-1, 1] spans [0, 1]
    if amplification is None:
        amplification = 1.0 / max(float(torch.quantile(difference.flatten(), BRIGHT_QUANTILE)), 1e-12)
    check_scalar(amplification, "amplification", float, min_val=0, include_boundaries="neither")
    shown = [(x + 1) / 2, (fx + 1) / 2, difference * amplification]
    columns = len(x)
    figure = Figure(figsize=(columns * PANEL_INCHES, len(ROWS) * PANEL_INCHES + TITLE_INCHES))
    FigureCanvasAgg(figure)
    top = 1 - TITLE_INCHES / (len(ROWS) * PANEL_INCHES + TITLE_INCHES)
    axes = figure.subplots(len(ROWS), columns, squeeze=False,
                           gridspec_kw={"left": 0.06, "right": 1, "bottom": 0, "top": top,
                                        "wspace": 0.05, "hspace": 0.05})
    for row, (row_name, images) in enumerate(zip(ROWS, shown)):
        for column in range(columns):
            ax = axes[row, column]
            ax.imshow(images[column].clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(str(classes[int(labels[column])]), fontsize=7)
            if column == 0:
                ax.set_ylabel(row_name if row < 2 else f"{row_name}\nx{amplification:.3g}", fontsize=7)
    figure.suptitle(f"{name or type(generator).__name__}: clean x, F(x), and |F(x) - x| amplified "
                    f"{amplification:.3g}x", fontsize=9)
    return figure


def save_transformation_figure(figure: Figure, path: str | os.PathLike[str], dpi: int = 100) -> None:
    """Write ``figure`` to ``path`` atomically (format from the suffix) at ``dpi``: a figure of N
    columns is ``N * PANEL_INCHES * dpi`` pixels wide and ``(3 * PANEL_INCHES + TITLE_INCHES) * dpi``
    high."""
    check_image_path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi)
