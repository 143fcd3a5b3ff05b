"""The technologies shipped in ``characterization/data`` and :func:`load`, which also reads users'
files."""
from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

from characterization.model import VoltageModel
from characterization.table import read_table

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_TECH = "14nm-512x64"


def list_technologies() -> list[str]:
    """Names of the shipped technologies (the stems of ``characterization/data/*.csv``)."""
    return sorted(path.stem for path in DATA_DIR.glob("*.csv"))


def load(name_or_path: str | os.PathLike[str], *, extrapolate: bool = False) -> VoltageModel:
    """Load a shipped technology by name, or a technology CSV file by path, with fitted curves.

    With ``extrapolate=True`` the model also answers outside the file's ``v_range``.
    Fits are cached per file (and its modification time), so repeated loads are cheap.

    >>> model = load("14nm-512x64")
    >>> round(model.energy_per_access(0.833), 3)   # the measured point of NeuralFuse's "1% at 0.83"
    0.694
    """
    fitted = _fit_file(*_locate(name_or_path))
    return dataclasses.replace(fitted, points=fitted.points.copy(), extrapolate=extrapolate)


def _locate(name_or_path: str | os.PathLike[str]) -> tuple[str, int]:
    known = list_technologies()
    path = DATA_DIR / f"{name_or_path}.csv" if str(name_or_path) in known else Path(name_or_path)
    if not path.is_file():
        raise ValueError(f"unknown technology {str(name_or_path)!r}: neither a known name "
                         f"({', '.join(known)}) nor an existing technology CSV file")
    path = path.resolve()
    return str(path), path.stat().st_mtime_ns


@functools.lru_cache(maxsize=32)
def _fit_file(path: str, mtime_ns: int) -> VoltageModel:
    return VoltageModel.from_table(read_table(path))
