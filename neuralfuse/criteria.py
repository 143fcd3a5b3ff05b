"""Accuracy criteria: when the chips of one sweep point count as keeping an accuracy floor.

A product guarantees accuracy per chip, not on average over chips. A :class:`Criterion` judges the
perturbed accuracies (PA, %) of all chips at one (configuration, voltage) against a floor:

- ``mean`` (the default): the mean PA over the chips is at or above the floor;
- ``quantile:Q`` (0 < Q < 1): the Q-quantile chip is at or above the floor. The quantile is the
  empirical one without interpolation (the inverse of the empirical distribution function,
  NumPy's ``method="inverted_cdf"``): of n chips sorted from worst to best, the k-th with
  k = ceil(Q·n). It is always one chip's PA, and at least n - k + 1 chips keep the floor when it
  does. With 10 chips, ``quantile:0.1`` is the worst chip and ``quantile:0.15`` or ``0.2`` the
  second worst;
- ``yield:Y`` (0 < Y ≤ 1): the fraction of chips whose PA is at or above the floor is at least Y,
  i.e. at least ceil(Y·n) chips keep it (``yield:0.95`` with 10 chips: all of them; with 20: 19).

On n chips ``quantile:Q`` is therefore the yield of n - ceil(Q·n) + 1 chips: with 10 or 20 chips
``quantile:0.1`` and ``yield:0.95`` ask the same, with 30 chips they differ (28 against 29 chips).

    >>> criterion = parse_criterion("quantile:0.1")
    >>> criterion.describe()
    '10th-percentile chip PA'
    >>> criterion.meets([90.0, 85.0, 70.0], floor=80.0), parse_criterion("mean").meets([90.0, 85.0, 70.0], 80.0)
    (False, True)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from characterization.validation import check_scalar

CRITERIA = ("mean", "quantile", "yield")
"""Names of the criteria; quantile and yield take a number (``quantile:0.1``, ``yield:0.95``)."""
ALLOWED = ("mean, quantile:Q (the Q-quantile chip, 0 < Q < 1, e.g. quantile:0.1) or yield:Y "
           "(the fraction of chips at or above the floor, 0 < Y <= 1, e.g. yield:0.95)")
_EPS = 1e-9  # Q·n and Y·n that are whole numbers up to rounding (0.3 · 10) count as whole


@dataclass(frozen=True)
class Criterion:
    """An accuracy criterion (see the module docstring): ``name`` and, for quantile and yield, ``level``."""

    name: str = "mean"
    level: float | None = None

    def __post_init__(self) -> None:
        if self.name not in CRITERIA:
            raise ValueError(f"criterion {self.name!r} is not valid: use {ALLOWED}")
        if self.name == "mean":
            if self.level is not None:
                raise ValueError(f"criterion 'mean' takes no number (got {self.level!r}): use {ALLOWED}")
            return
        if self.level is None:
            raise ValueError(f"criterion {self.name!r} needs a number: use {ALLOWED}")
        check_scalar(self.level, f"{self.name} level", float, min_val=0.0, max_val=1.0,
                     include_boundaries="right" if self.name == "yield" else "neither",
                     allowed="a fraction in (0, 1], e.g. yield:0.95" if self.name == "yield"
                     else "a fraction in (0, 1), e.g. quantile:0.1")
        object.__setattr__(self, "level", float(self.level))

    @property
    def label(self) -> str:
        """The criterion as :func:`parse_criterion` reads it, e.g. ``'quantile:0.1'``."""
        return self.name if self.level is None else f"{self.name}:{self.level:g}"

    def describe(self) -> str:
        """What the floor applies to, in words, e.g. ``'95% yield'``."""
        if self.name == "mean":
            return "mean PA"
        if self.name == "quantile":
            return f"{_ordinal(100 * self.level)}-percentile chip PA"
        return f"{100 * self.level:g}% yield"

    def condition(self) -> str:
        """The rule a voltage meets, in words, e.g. ``'whose mean PA over the chips stays at or above it'``."""
        if self.name == "yield":
            return f"where at least {100 * self.level:g}% of the chips stay at or above it"
        return f"whose {'mean PA over the chips' if self.name == 'mean' else self.describe()} stays at or above it"

    def score(self, pa: ArrayLike, floor: float) -> float | np.ndarray:
        """What is compared: the mean or the quantile PA of the chips ``pa`` (%), or for a yield the
        fraction of them at or above ``floor``.

        ``pa`` holds one PA per chip along its last axis; a 2-D array (e.g. one row per voltage or
        per bootstrap resample) gives one score per row, as an array.
        """
        pa = np.sort(np.asarray(pa, dtype=float), axis=-1)
        if not pa.shape[-1]:
            raise ValueError("no chips to judge")
        if self.name == "mean":
            score = pa.mean(axis=-1)
        elif self.name == "quantile":
            score = pa[..., max(1, math.ceil(self.level * pa.shape[-1] - _EPS)) - 1]
        else:
            score = np.mean(pa >= floor, axis=-1)
        return float(score) if np.ndim(score) == 0 else score

    def meets(self, pa: ArrayLike, floor: float) -> bool | np.ndarray:
        """Whether the chips ``pa`` (PA in %, one per chip along the last axis) keep ``floor`` under
        this criterion; one answer per row of a 2-D ``pa``, as a boolean array."""
        pa = np.asarray(pa, dtype=float)
        required = self.chips_required(pa.shape[-1])
        meets = (pa.mean(axis=-1) >= floor if required is None
                 else np.sum(pa >= floor, axis=-1) >= required)
        return bool(meets) if np.ndim(meets) == 0 else meets

    def chips_required(self, chips: int) -> int | None:
        """How many of ``chips`` chips must keep the floor (None for the mean, which asks no count).

        ``quantile:Q`` asks n - ceil(Q·n) + 1 of n chips, ``yield:Y`` asks ceil(Y·n): two criteria
        with the same count are the same condition on that many chips.

        >>> parse_criterion("quantile:0.1").chips_required(10), parse_criterion("yield:0.95").chips_required(10)
        (10, 10)
        >>> parse_criterion("quantile:0.1").chips_required(30), parse_criterion("yield:0.95").chips_required(30)
        (28, 29)
        """
        if self.name == "mean":
            return None
        if self.name == "quantile":
            return chips - max(1, math.ceil(self.level * chips - _EPS)) + 1
        return math.ceil(self.level * chips - _EPS)


MEAN = Criterion()
"""The default criterion: the mean PA over the chips."""


def parse_criterion(text: str | Criterion) -> Criterion:
    """The criterion written as ``mean``, ``quantile:Q`` or ``yield:Y`` (a Criterion is returned as is).

    Anything else raises a one-line ValueError naming the text and what is allowed.
    """
    if isinstance(text, Criterion):
        return text
    name, colon, number = str(text).strip().partition(":")
    level = None
    if number.strip():
        try:
            level = float(number)
        except ValueError:
            raise ValueError(f"criterion {text!r} is not valid: {number.strip()!r} is not a number; "
                             f"use {ALLOWED}") from None
    elif colon:
        raise ValueError(f"criterion {text!r} is not valid: the number after ':' is missing; use {ALLOWED}")
    return Criterion(name.strip().lower(), level)


def criterion_scores(per_chip: pd.DataFrame, criterion: Criterion, floor: float) -> pd.DataFrame:
    """One row per (config, voltage) of a per-chip table (columns ``config``, ``voltage``, ``pa``):
    ``criterion_score`` (:meth:`Criterion.score`) and ``meets`` (:meth:`Criterion.meets`)."""
    rows = [(config, voltage, criterion.score(group.pa, floor), criterion.meets(group.pa, floor))
            for (config, voltage), group in per_chip.groupby(["config", "voltage"], sort=False)]
    return pd.DataFrame(rows, columns=["config", "voltage", "criterion_score", "meets"])


def _ordinal(number: float) -> str:
    """``10`` -> ``'10th'``, ``2.5`` -> ``'2.5th'``, ``1`` -> ``'1st'``."""
    text = f"{number:g}"
    if "." in text or 10 <= int(number) % 100 <= 20:
        return f"{text}th"
    return text + {1: "st", 2: "nd", 3: "rd"}.get(int(number) % 10, "th")
