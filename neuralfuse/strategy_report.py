"""What a person reads of a strategy comparison (:mod:`neuralfuse.strategies`), and its files.

- :func:`format_comparison`: per criterion, the floors as rows and the strategies as columns
  (energy saved ± its chip-to-chip standard error, ``*`` on the most), then the winner at each
  floor with its margin over the runner-up; criteria that are the same condition on these chips
  are one table;
- :func:`which_protection` / :func:`format_which_protection`: the short table at one floor
  (strategies as rows, criteria as columns), for a summary such as the demo's;
- :func:`write_comparison`: ``strategies.csv`` (one row per strategy × criterion × floor),
  ``winners.csv``, ``strategies.json``, ``strategies.txt`` and the plot ``strategies.png``/``.svg``
  (:func:`neuralfuse.plots.strategies_figure`), each written atomically.

    comparison = compare_strategies(strategies)
    print(format_comparison(comparison))
    write_comparison(comparison, "comparison/")
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from characterization.atomic import atomic_path, check_output_path, write_json
from neuralfuse.criteria import Criterion
from neuralfuse.strategies import Comparison

FILES = ("strategies.csv", "winners.csv", "strategies.json", "strategies.txt", "strategies.png", "strategies.svg")
"""What :func:`write_comparison` writes into its folder."""


def format_comparison(comparison: Comparison) -> str:
    """The plain-text report of ``comparison`` (see the module docstring)."""
    setting, n = comparison.setting, len(comparison.chips)
    samples = "" if setting["samples"] is None else f", {setting['samples']} samples"
    level = f"{100 * comparison.bootstrap.level:g}%"
    lines = [
        "Which protection pays: weight-memory energy saved at accuracy floors",
        f"  measured alike: {n} evaluation chips ({_chip_range(comparison.chips)}), the same test images "
        f"(data {setting['data_fingerprint'][:12]}...{samples}), technology {setting['tech']}, "
        f"{setting['fault_model']} faults, {setting['layout']} layout, {setting['bits']}-bit weights",
        "  energy saved: 1 - weight-memory energy per input over that of the reference strategy's base model "
        "at Vmin (Eq. 6: a generator's own reads at Vmin)",
        f"  floors: PA (%) against the clean accuracy of the reference strategy {comparison.reference!r}, "
        f"CA {comparison.reference_ca:.2f}%",
        f"  cells: energy saved (%) ± chip-to-chip standard error (bootstrap over the chips: "
        f"{comparison.bootstrap.resamples} draws, seed {comparison.bootstrap.seed}, the same draws for every "
        "strategy); * the most; (N%): the floor kept in only N% of the draws; none: no swept voltage keeps it; "
        "fails test: per chip, the chips' test PAs miss the criterion",
        "",
        "strategies:",
    ]
    width = max(len(m.strategy.name) for m in comparison.strategies)
    for m in comparison.strategies:
        lines.append(f"  {m.strategy.name:<{width}}  {m.strategy.describe()}; CA {m.ca:.2f}%")
    for criterion in comparison.shown_criteria():
        lines += ["", *_criterion_lines(comparison, criterion, level)]
    return "\n".join(lines)


def _criterion_lines(comparison: Comparison, criterion: Criterion, level: str) -> list[str]:
    rows = comparison.table[comparison.table.criterion == criterion.label]
    names = [m.strategy.name for m in comparison.strategies]
    same = [label for label, first in comparison.same_as.items() if first == criterion.label]
    title = comparison.title(criterion)
    if same:
        title += (f": the same condition on {len(comparison.chips)} chips (at least "
                  f"{criterion.chips_required(len(comparison.chips))} of them keep the floor), shown once")
    lines = [title, f"  one voltage for all chips: the lowest-energy swept voltage {criterion.condition()}; "
             "per chip: each chip at its lowest voltage keeping the floor on validation images, scored on test"]
    cells = {(row.floor, row.strategy): _cell(row) for row in rows.itertuples(index=False)}
    widths = [max(len(name), *(len(cells[f, name]) for f in comparison.floors)) + 2 for name in names]
    lines.append(f"  {'floor':<15}" + "".join(f"{name:<{w}}" for name, w in zip(names, widths)))
    for floor in comparison.floors:
        lines.append(f"  {_floor_label(comparison, floor):<15}"
                     + "".join(f"{cells[floor, name]:<{w}}" for name, w in zip(names, widths)))
    lines.append(f"  winner at each floor (margin over the runner-up in points of energy saved, {level} "
                 "paired-bootstrap interval; the fraction of draws in which it saves strictly the most):")
    winners = comparison.winners[comparison.winners.criterion == criterion.label]
    for row in winners.itertuples(index=False):
        tied = rows[(rows.floor == row.floor) & rows.best].strategy.tolist()
        lines.append(f"  {_floor_label(comparison, row.floor):<15}{_verdict(row, tied)}")
    return lines


def _cell(row: Any) -> str:
    if not row.kept:
        return "fails test" if row.per_chip else "none"
    text = f"{100 * row.energy_saving:.1f}"
    if not math.isnan(row.energy_saving_se):
        text += f"±{100 * row.energy_saving_se:.1f}"
    text += "*" if row.best else ""
    return text + (f" ({_share(row.kept_fraction)})" if row.kept_fraction < 1 else "")


def _verdict(row: Any, best: list[str]) -> str:
    """The winner of one floor in words; ``best``: every strategy that saves the most there."""
    if not row.winner:
        return "no strategy keeps it"
    wins = f"wins {_share(row.win_fraction)} of draws"
    if not row.runner_up:
        return f"only {row.winner} keeps it; {wins}"
    if row.margin == 0:
        return f"tie: {' = '.join(best)}" + (f" ({row.winner} {wins})" if row.win_fraction else "")
    return (f"{row.winner}, by {100 * row.margin:.1f} [{100 * row.margin_low:.1f}, {100 * row.margin_high:.1f}] "
            f"over {row.runner_up}; {wins}")


def _share(fraction: float) -> str:
    """A fraction of draws in percent, rounded down: 100% only when it is all of them."""
    return f"{math.floor(100 * fraction + 1e-9)}%"


def _floor_label(comparison: Comparison, floor: float) -> str:
    below = comparison.reference_ca - floor
    return f"{floor:.2f} (CA{'' if below == 0 else f'{-below:+.3g}'})"


def _chip_range(chips: tuple[int, ...]) -> str:
    if len(chips) > 1 and list(chips) == list(range(chips[0], chips[0] + len(chips))):
        return f"seeds {chips[0]}-{chips[-1]}"
    return "seeds " + ", ".join(map(str, chips))


def which_protection(comparison: Comparison, floor: float) -> dict[str, Any]:
    """The energy each strategy saves at ``floor`` (one of ``comparison.floors``) under each criterion
    (the same condition once), JSON-ready: ``floor``, ``below_reference_ca``, ``reference``,
    ``criteria`` (labels), ``same_as`` and ``strategies`` (one dict per strategy: ``name``,
    ``per_chip``, and per criterion label ``energy_saving``, ``energy_saving_se`` (None where the
    floor is not kept) and ``best``)."""
    matches = [f for f in comparison.floors if math.isclose(f, floor, abs_tol=1e-9)]
    if not matches:
        raise ValueError(f"floor={floor!r} is not valid: use one of the comparison's floors "
                         f"{', '.join(f'{f:g}' for f in comparison.floors)}")
    rows = comparison.table[comparison.table.floor == matches[0]]
    labels = [c.label for c in comparison.shown_criteria()]

    def value(row: pd.Series, column: str) -> float | None:
        return None if not row.kept or math.isnan(row[column]) else float(row[column])

    strategies = []
    for m in comparison.strategies:
        mine = rows[rows.strategy == m.strategy.name].set_index("criterion")
        strategies.append({
            "name": m.strategy.name, "per_chip": m.strategy.per_chip,
            "energy_saving": {label: value(mine.loc[label], "energy_saving") for label in labels},
            "energy_saving_se": {label: value(mine.loc[label], "energy_saving_se") for label in labels},
            "best": {label: bool(mine.loc[label].best) for label in labels}})
    return {"floor": matches[0], "below_reference_ca": comparison.reference_ca - matches[0],
            "reference": comparison.reference, "criteria": labels, "same_as": dict(comparison.same_as),
            "chips": len(comparison.chips), "strategies": strategies}


def format_which_protection(summary: Mapping[str, Any]) -> str:
    """Printable lines for a :func:`which_protection` summary."""
    labels = summary["criteria"]
    heads = [" = ".join([label, *(s for s, first in summary["same_as"].items() if first == label)])
             for label in labels]
    width = max(8, *(len(s["name"]) for s in summary["strategies"])) + 2
    columns = [max(len(h), 13) + 2 for h in heads]
    lines = [f"which protection at {summary['floor']:.2f}% PA ({summary['reference']}'s CA minus "
             f"{summary['below_reference_ca']:.3g} points): weight-memory energy saved (%, ± chip-to-chip "
             f"standard error over {summary['chips']} chips; * the most)",
             f"  {'strategy':<{width}}" + "".join(f"{h:<{w}}" for h, w in zip(heads, columns))]
    for strategy in summary["strategies"]:
        cells = []
        for label in labels:
            energy, se = strategy["energy_saving"][label], strategy["energy_saving_se"][label]
            cell = ("fails test" if strategy["per_chip"] else "none") if energy is None else f"{100 * energy:.1f}"
            cell += "" if energy is None or se is None else f" ± {100 * se:.1f}"
            cells.append(cell + (" *" if strategy["best"][label] else ""))
        lines.append(f"  {strategy['name']:<{width}}" + "".join(f"{c:<{w}}" for c, w in zip(cells, columns)))
    same = [f"{s} is the same condition as {first} on {summary['chips']} chips"
            for s, first in summary["same_as"].items()]
    if same:
        lines.append(f"  ({'; '.join(same)})")
    return "\n".join(lines)


def write_comparison(comparison: Comparison, folder: str | Path,
                     provenance: Mapping[str, Any] | None = None) -> list[Path]:
    """Write :data:`FILES` into ``folder`` (created if missing; its parent must exist), each
    atomically; ``provenance`` (e.g. the spec and the command) goes into the JSON. Returns the paths."""
    from neuralfuse.plots import save_figure, strategies_figure

    folder = check_output_path(folder, folder=True)
    folder.mkdir(exist_ok=True)
    paths = []
    for name, frame in (("strategies.csv", comparison.table), ("winners.csv", comparison.winners)):
        with atomic_path(folder / name) as tmp:
            frame.to_csv(tmp, index=False)
        paths.append(folder / name)
    write_json(folder / "strategies.json", {**comparison.as_dict(), "provenance": dict(provenance or {})})
    with atomic_path(folder / "strategies.txt") as tmp:
        tmp.write_text(format_comparison(comparison) + "\n")
    paths += [folder / "strategies.json", folder / "strategies.txt"]
    return paths + save_figure(strategies_figure(comparison), folder / "strategies")
