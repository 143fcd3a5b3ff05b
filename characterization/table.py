"""Technology files: CSV tables of characterized voltage points, each with its source.

Format (one technology per file)::

    # Free text naming the technology, the source of every point and the units.
    # v_range: 0.70 1.00          <- optional: the valid range of V/Vmin (default: the points' span)
    v_over_vmin,ber,energy,source
    0.83,1e-2,0.694,"where these numbers come from"
    1.00,1e-6,1.0,"..."

- ``v_over_vmin``: supply voltage divided by Vmin, strictly increasing from row to row;
- ``ber``: fraction of faulty bit cells, in (0, 0.5], non-increasing with voltage. A voltage where
  no error was seen is recorded with its upper bound, 1 / (bits tested): the fitted model is
  linear in probit space, where a BER of exactly 0 has no finite position;
- ``energy``: dynamic energy per access relative to the energy at Vmin, positive and
  non-decreasing. E(Vmin) = 1 by this definition, so the file need not list it, and energies
  must be at most 1 below Vmin and at least 1 above it;
- ``source``: non-empty on every row.

``ber`` or ``energy`` may be left empty on a row that gives only the other. A file needs at least
two BER points (with different values) and one energy point away from Vmin. Every violation
raises :class:`TechnologyFileError` naming the file, the data row (1-based) and its line.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from characterization.errors import TechnologyFileError

CSV_COLUMNS = ("v_over_vmin", "ber", "energy", "source")
NUMERIC_COLUMNS = ("v_over_vmin", "ber", "energy")
RANGE_KEY = "v_range:"


@dataclass(frozen=True, eq=False)
class TechnologyTable:
    """The validated content of one technology file."""

    name: str
    header: str
    v_range: tuple[float, float]
    points: pd.DataFrame


def read_table(path: str | os.PathLike[str]) -> TechnologyTable:
    """Read and validate a technology CSV file; the technology is named after the file's stem."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    n_header = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    header = [line[1:].strip() for line in lines[:n_header]]
    check = _Checker(path, first_data_line=n_header + 2)

    try:
        raw = pd.read_csv(io.StringIO("\n".join(lines[n_header:])), dtype=str,
                          keep_default_na=False, skip_blank_lines=False).fillna("")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise TechnologyFileError(f"{path}: not a CSV table after the '#' header: {err}") from None
    missing = [c for c in CSV_COLUMNS if c not in raw.columns]
    if missing:
        check.fail(f"missing column(s) {', '.join(missing)}; required: {', '.join(CSV_COLUMNS)}")
    raw = raw[(raw.apply(lambda column: column.str.strip()) != "").any(axis=1)]
    check.labels = raw.index

    points = raw.copy()
    for column in NUMERIC_COLUMNS:
        text = raw[column].str.strip()
        points[column] = pd.to_numeric(text, errors="coerce")
        check.rows(points[column].isna() & (text != ""), f"{column} is not a number")
    _validate(points, check)

    v = points.v_over_vmin
    lo, hi = _parse_range(header, check) or (float(v.min()), float(v.max()))
    check.rows((v < lo) | (v > hi), f"v_over_vmin outside the file's v_range [{lo}, {hi}]")
    return TechnologyTable(path.stem, "\n".join(header), (lo, hi), points.reset_index(drop=True))


def _validate(points: pd.DataFrame, check: _Checker) -> None:
    v, ber, energy = points.v_over_vmin, points.ber, points.energy
    check.rows(v.isna(), "v_over_vmin is empty")
    check.rows(~(v > 0), "v_over_vmin must be positive")
    check.rows(v.diff() <= 0, "v_over_vmin must be strictly increasing from row to row")
    check.rows(points.source.str.strip() == "", "source is empty: every point needs a source")
    check.rows(ber.isna() & energy.isna(), "neither ber nor energy is given")

    check.rows(ber.notna() & ~((ber > 0) & (ber <= 0.5)),
               "ber must be in (0, 0.5]; record a voltage with no observed error by its upper "
               "bound 1/(bits tested)")
    check.rows(ber.dropna().diff() > 0, "ber must not increase with voltage")
    check.rows(energy.notna() & ~(energy > 0), "energy must be positive")
    check.rows(energy.dropna().diff() < 0, "energy must not decrease with voltage")
    at_vmin = (v - 1).abs() <= 1e-9
    check.rows(((v < 1) & (energy > 1)) | ((v > 1) & (energy < 1))
               | (at_vmin & energy.notna() & ((energy - 1).abs() > 1e-9)),
               "energy is relative to the energy at Vmin, so it must be <= 1 below Vmin, "
               "1 at Vmin and >= 1 above")

    if ber.count() < 2 or ber.max() == ber.min():
        check.fail("needs at least 2 ber points with different values to fit the BER curve")
    if (energy.notna() & ~at_vmin).sum() < 1:
        check.fail("needs at least 1 energy point away from v_over_vmin = 1 to fit the energy curve")


def _parse_range(header: list[str], check: _Checker) -> tuple[float, float] | None:
    for line_no, text in enumerate(header, start=1):
        if not text.startswith(RANGE_KEY):
            continue
        try:
            lo, hi = (float(word) for word in text[len(RANGE_KEY):].split())
        except ValueError:
            lo = hi = float("nan")
        if not 0 < lo < hi:
            check.fail(f"line {line_no}: expected '# {RANGE_KEY} LO HI' with 0 < LO < HI, "
                       f"got '# {text}'")
        return lo, hi
    return None


class _Checker:
    """Raises :class:`TechnologyFileError` naming the file and the first offending data row.

    ``labels`` are the index labels of the non-blank data rows: a label is the row's offset from
    the first data line, so blank lines shift line numbers but not row numbers.
    """

    def __init__(self, path: Path, first_data_line: int):
        self.path = path
        self.first_data_line = first_data_line
        self.labels = pd.Index([])

    def fail(self, problem: str) -> NoReturn:
        raise TechnologyFileError(f"{self.path}: {problem}")

    def rows(self, bad: pd.Series, problem: str) -> None:
        """Fail if any entry of ``bad`` (a boolean Series indexed by row label) is true."""
        flagged = bad.index[np.asarray(bad, dtype=bool)]
        if len(flagged):
            label = flagged[0]
            row = self.labels.get_loc(label) + 1
            self.fail(f"row {row} (line {self.first_data_line + label}): {problem}")
