"""The lowest voltage at which a model keeps an accuracy floor, measured at as few voltages as it takes.

A full sweep measures every voltage; to place one more model at one floor (the demo's "which
protection" table) a scan suffices::

    table = scan_floor(model, test_set, voltages, start=0.84, floor=82.4, chips=10, out_dir="robust")

From ``start`` (one of ``voltages``; e.g. where another strategy keeps the floor) it goes down the
list while the model keeps the floor, and stops at the first voltage where it does not. Where the
model does not keep the floor at ``start``, it first measures the highest voltage: if the floor is
lost even there, no voltage keeps it (stop); else it goes up from ``start`` to the first voltage
that keeps it. Each step is one more voltage of the same resumable sweep folder
(:func:`neuralfuse.tradeoff.sweep`, which measures only the new points), so the folder ends as an
ordinary sweep over the scanned voltages, comparable with any other sweep on the same chips and
images (:mod:`neuralfuse.strategies`).

The scan assumes what holds in expectation (faults are nested across voltages on each chip): that
a model keeping the floor at a voltage keeps it at every higher one. Where noise breaks that, a
full sweep may find a lower voltage than the scan does.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn
from torch.utils.data import Dataset

from neuralfuse.criteria import MEAN, Criterion, parse_criterion
from neuralfuse.tradeoff import BASE, VOLTAGE_DECIMALS, judged, load_chips, sweep


def scan_floor(model: nn.Module, dataset: Dataset, voltages: Sequence[float], *, start: float,
               floor: float, out_dir: str | Path, criterion: Criterion | str = MEAN,
               on_step: Callable[[float, bool], None] | None = None, **sweep_options: Any) -> pd.DataFrame:
    """Sweep ``model`` alone at the voltages of ``voltages`` that the scan from ``start`` needs (see
    the module docstring) into ``out_dir``; return the sweep's table over those voltages.

    ``floor`` is a PA in %, judged by ``criterion`` (default: the mean over chips);
    ``sweep_options`` go to :func:`neuralfuse.tradeoff.sweep` (``chips``, ``memory``, ``precision``,
    ...). ``on_step(voltage, kept)`` is called after each voltage, e.g. to report progress.
    """
    criterion = parse_criterion(criterion)
    ladder = sorted({round(float(v), VOLTAGE_DECIMALS) for v in voltages}, reverse=True)
    start = round(float(start), VOLTAGE_DECIMALS)
    if start not in ladder:
        raise ValueError(f"start={start!r} is not one of the voltages {', '.join(f'{v:g}' for v in ladder)}")
    measured: list[float] = []
    tables: list[pd.DataFrame] = []
    out_dir = Path(out_dir)

    def keeps(voltage: float) -> bool:
        measured.append(voltage)
        tables.append(sweep(model, dataset, measured, out_dir=out_dir, **sweep_options))
        scored = judged(tables[-1], floor, criterion, load_chips(out_dir))
        kept = bool(scored[(scored.config == BASE) & (scored.voltage == voltage)].meets.iloc[0])
        if on_step is not None:
            on_step(voltage, kept)
        return kept

    i = ladder.index(start)
    if keeps(start):
        for voltage in ladder[i + 1:]:
            if not keeps(voltage):
                break
    elif i > 0 and keeps(ladder[0]):
        for voltage in reversed(ladder[1:i]):
            if keeps(voltage):
                break
    return tables[-1]
