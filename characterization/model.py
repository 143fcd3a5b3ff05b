"""Fitted voltage models: bit-error rate and energy per access as functions of V/Vmin."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from characterization.errors import OutOfRangeError
from characterization.table import TechnologyTable

# Voltages this close to an end of the range (float noise in a round trip) count as inside it.
_RANGE_TOLERANCE = 1e-9


@dataclass(frozen=True, eq=False, repr=False)
class VoltageModel:
    """A technology's fitted curves over its characterized range; voltages are in units of Vmin.

    BER: every bit cell has a critical voltage Vcrit ~ Normal(mu, sigma) and is faulty when
    v < Vcrit, so ``ber(v) = P(Vcrit > v) = norm.sf((v - mu) / sigma)`` (fault sets are nested
    across voltages). Energy: ``energy_per_access(v) = v ** alpha``, 1 at Vmin by definition.
    The methods take a scalar (and return a float) or an array (and return an array); outside
    ``v_range`` they raise :class:`OutOfRangeError` unless ``extrapolate`` is true.
    ``points`` holds the file's measured points; treat it as read-only.

    >>> model = load("14nm-512x64")                       # doctest: +SKIP
    >>> model.ber(0.83), model.energy_per_access(0.83)    # doctest: +SKIP
    (0.0100..., 0.694...)
    """

    name: str
    source: str
    v_range: tuple[float, float]
    points: pd.DataFrame
    mu: float
    sigma: float
    alpha: float
    extrapolate: bool = False

    @classmethod
    def from_table(cls, table: TechnologyTable, *, extrapolate: bool = False) -> VoltageModel:
        """Fit both curves to a technology table's points."""
        ber_points = table.points.dropna(subset=["ber"])
        energy_points = table.points.dropna(subset=["energy"])
        mu, sigma = fit_ber(ber_points.v_over_vmin.to_numpy(), ber_points.ber.to_numpy())
        alpha = fit_energy_exponent(energy_points.v_over_vmin.to_numpy(),
                                    energy_points.energy.to_numpy())
        return cls(table.name, table.header, table.v_range, table.points, mu, sigma, alpha,
                   extrapolate)

    def ber(self, v: ArrayLike) -> float | np.ndarray:
        """Fraction of faulty bit cells at supply voltage ``v`` (in units of Vmin)."""
        v, scalar = _as_array(v, "V/Vmin")
        self._check_range(v)
        return _result(stats.norm.sf((v - self.mu) / self.sigma), scalar)

    def voltage_at_ber(self, p: ArrayLike) -> float | np.ndarray:
        """The voltage (in units of Vmin) at which the bit-error rate is ``p``: exact inverse of
        :meth:`ber`."""
        p, scalar = _as_array(p, "BER", upper=1.0)
        v = self.mu + self.sigma * stats.norm.isf(p)
        self._check_range(v, asked_ber=p)
        return _result(v, scalar)

    def energy_per_access(self, v: ArrayLike) -> float | np.ndarray:
        """Dynamic energy per access at ``v`` relative to the energy per access at Vmin."""
        v, scalar = _as_array(v, "V/Vmin")
        self._check_range(v)
        return _result(v ** self.alpha, scalar)

    def curve(self, n_points: int = 31) -> pd.DataFrame:
        """Both curves on ``n_points`` evenly spaced voltages spanning ``v_range``."""
        v = np.linspace(*self.v_range, n_points)
        return pd.DataFrame({"v_over_vmin": v, "ber": self.ber(v),
                             "energy": self.energy_per_access(v)})

    def __repr__(self) -> str:
        lo, hi = self.v_range
        return (f"VoltageModel(name={self.name!r}, v_range=({lo!r}, {hi!r}), mu={self.mu:.4f}, "
                f"sigma={self.sigma:.4f}, alpha={self.alpha:.3f}, points={len(self.points)}, "
                f"extrapolate={self.extrapolate})")

    def _check_range(self, v: np.ndarray, asked_ber: np.ndarray | None = None) -> None:
        lo, hi = self.v_range
        outside = (v < lo - _RANGE_TOLERANCE) | (v > hi + _RANGE_TOLERANCE)
        if self.extrapolate or not outside.any():
            return
        beyond = (f"to extrapolate the fit, load it from Python as "
                  f"characterization.load({self.name!r}, extrapolate=True)")
        if asked_ber is None:
            what = f"V/Vmin = {v[outside][0]:g}"
            beyond = f"give a voltage inside it or a bit-error rate instead, or {beyond}"
        else:
            what = (f"BER {asked_ber[outside][0]:g} (V/Vmin = {v[outside][0]:.4f}; BER spans "
                    f"{self.ber(hi):.3g} to {self.ber(lo):.3g} over the range)")
        raise OutOfRangeError(f"{what} is outside the characterized range [{lo:g}, {hi:g}] of "
                              f"{self.name}: {beyond}")


def fit_ber(v: np.ndarray, ber: np.ndarray) -> tuple[float, float]:
    """Fit (mu, sigma) by least squares in probit space, where ``norm.isf(ber) = (v - mu) / sigma``
    is a straight line in v. Two points give the exact solution."""
    line = stats.linregress(v, stats.norm.isf(ber))
    return float(-line.intercept / line.slope), float(1 / line.slope)


def fit_energy_exponent(v: np.ndarray, energy: np.ndarray) -> float:
    """Fit alpha in ``energy = v ** alpha`` by least squares in log space (a line through
    E(1) = 1: log E = alpha log v). One point off Vmin gives the exact solution."""
    log_v, log_energy = np.log(v), np.log(energy)
    return float(log_v @ log_energy / (log_v @ log_v))


def _as_array(values: ArrayLike, what: str, upper: float = np.inf) -> tuple[np.ndarray, bool]:
    """``values`` as a float array (and whether it was a scalar), each strictly in (0, upper)."""
    array = np.asarray(values, dtype=float)
    bad = ~((array > 0) & (array < upper))
    if bad.any():
        raise ValueError(f"{what} must be in (0, {upper:g}), got {array[bad][0]:g}")
    return array, array.ndim == 0


def _result(values: np.ndarray, scalar: bool) -> float | np.ndarray:
    return float(values) if scalar else values
