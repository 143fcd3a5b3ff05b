"""Simulated chips and their fault maps.

A :class:`Chip` is one physical die: a seed from which every cell's behaviour follows. Each cell
has a failure quantile ``u`` (uniform in (0, 1)); it is faulty at bit-error rate ``p`` iff
``u < p``, i.e. at every supply voltage below its critical voltage ``voltage_at_ber(u)``, and it
always holds the same stuck value (0 or 1, equally likely). Fault maps are therefore nested: a cell
faulty at V is faulty, with the same stuck value, at every lower voltage of the same chip.

Every array has its own counter-based random stream keyed by (seed, array index), so any region of
any chip is generated on demand, identically on every machine and in any order, with work
proportional to the number of faulty cells (see :mod:`sramsim._fault_streams` for the algorithm).

Fault models (what a faulty cell does to the bit stored in it; :data:`FAULT_MODELS`):

- ``"stuck-at"`` (default; reproduces the NeuralFuse authors' code): the cell reads its stuck value,
  so the stored bit changes only where it differed, about half of the faulty cells. The BER is the
  fraction of faulty *cells*: at BER 1% about 0.5% of the stored bits flip.
- ``"flip"``: every faulty cell inverts the stored bit: at BER 1%, 1% of the bits flip.

    >>> chip = Chip(seed=3)
    >>> low, high = chip.fault_map(2**20, ber=0.001), chip.fault_map(2**20, ber=0.01)
    >>> bool(np.isin(low.cells, high.cells).all())        # nested
    True
"""
from __future__ import annotations

import decimal
import os
from dataclasses import dataclass, field

import numpy as np

from characterization import DEFAULT_TECH
from characterization.validation import check_scalar
from sramsim.array import ArrayGeometry
from sramsim.fault_models import DEFAULT_FAULT_MODEL, FAULT_MODEL_SEMANTICS, FAULT_MODELS, check_fault_model
from sramsim.mapfile import read_fault_map, write_fault_map
from sramsim.operating_point import OperatingPoint, check_ber

__all__ = ["DEFAULT_FAULT_MODEL", "FAULT_MODELS", "FAULT_MODEL_SEMANTICS", "MAX_SEED", "Chip", "FaultMap",
           "check_fault_model", "check_seed", "load_fault_map", "max_hazard"]

MAX_SEED = 2**63


def check_seed(seed: int) -> int:
    """Return ``seed`` as an int if it is an integer in [0, 2**63), else raise a ValueError."""
    return int(check_scalar(seed, "chip seed", int, min_val=0, max_val=MAX_SEED,
                            include_boundaries="left", allowed="an integer in [0, 2**63)"))


def max_hazard(ber: float) -> float:
    """Hazard threshold of rate ``ber``: a cell is faulty iff its hazard ``-log(1-u)`` is below.
    Computed in decimal, so the same bits on every machine (like the hazards themselves)."""
    with decimal.localcontext() as context:
        context.prec = 40
        return -float((1 - decimal.Decimal(float(ber))).ln())


@dataclass(frozen=True, eq=False)
class FaultMap:
    """The faulty cells among flat cells ``start .. start + n_cells - 1`` of one chip at one rate.

    ``cells`` (int64, sorted) are flat cell indices (see :mod:`sramsim.array`), ``stuck`` (uint8)
    their stuck values and ``hazard`` (float64) their failure hazards ``-log(1 - u)`` (see
    :attr:`quantile`). ``voltage`` is None when the map was asked by BER.
    """

    cells: np.ndarray
    stuck: np.ndarray
    hazard: np.ndarray
    start: int
    n_cells: int
    ber: float
    voltage: float | None
    seed: int
    tech: str
    geometry: ArrayGeometry = field(default_factory=ArrayGeometry)

    def __len__(self) -> int:
        return int(self.cells.size)

    @property
    def quantile(self) -> np.ndarray:
        """Failure quantile ``u`` of each faulty cell: it is faulty at every BER above ``u``, i.e.
        below the voltage ``voltage_at_ber(u)`` (its critical voltage)."""
        return -np.expm1(-self.hazard)

    @property
    def faulty_fraction(self) -> float:
        """Fraction of the region's cells that are faulty (≈ ``ber``)."""
        return len(self) / self.n_cells if self.n_cells else 0.0

    def restrict(self, ber: float) -> FaultMap:
        """The same chip's map at a lower rate ``ber`` (the cells whose quantile is below it)."""
        ber = check_ber(ber)
        if ber > self.ber:
            raise ValueError(f"cannot raise the rate of a fault map from {self.ber:g} to {ber:g}: "
                             "generate the map at the higher rate instead")
        keep = self.hazard < max_hazard(ber)
        return FaultMap(self.cells[keep], self.stuck[keep], self.hazard[keep], self.start,
                        self.n_cells, ber, None, self.seed, self.tech, self.geometry)

    def save(self, path: str | os.PathLike[str], fault_model: str = "stuck-at") -> None:
        """Write the map to ``path`` as an ``.npz`` file, atomically.

        Keys: ``cell_index`` (int64, sorted flat indices of faulty cells), ``stuck_value`` (uint8),
        ``quantile`` (float64), ``start``, ``n_cells``, ``rows``, ``cols``, ``arrays`` (arrays
        touched), ``ber``, ``voltage`` (NaN if given by BER), ``seed``, ``tech``, ``fault_model``
        and ``fault_model_semantics``.
        """
        write_fault_map(path, self, fault_model)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FaultMap:
        """A map written by :meth:`save` or ``sramsim faultmap`` (whole or streamed), or one
        measured on real silicon in the same format; see :func:`load_fault_map`."""
        keys = read_fault_map(path)
        geometry = ArrayGeometry(keys["rows"], keys["cols"])
        hazard = -np.log1p(-keys["quantile"])
        return cls(keys["cell_index"], keys["stuck_value"], hazard, keys["start"], keys["n_cells"],
                   keys["ber"], keys["voltage"], keys["seed"], keys["tech"], geometry)

    def __repr__(self) -> str:
        at = f"voltage={self.voltage:g}, " if self.voltage is not None else ""
        return (f"FaultMap(seed={self.seed}, tech={self.tech!r}, {at}ber={self.ber:g}, "
                f"cells={self.start}..{self.start + self.n_cells}, faulty={len(self)})")


@dataclass(frozen=True)
class Chip:
    """One simulated die of technology ``tech`` (a name or a technology file; see
    :func:`characterization.load`), made of arrays of ``geometry``.

    >>> Chip(seed=7).fault_map(512 * 64, ber=0.01)         # doctest: +ELLIPSIS
    FaultMap(seed=7, tech='14nm-512x64', ber=0.01, cells=0..32768, faulty=...)
    """

    seed: int
    tech: str = DEFAULT_TECH
    geometry: ArrayGeometry = field(default_factory=ArrayGeometry)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seed", check_seed(self.seed))
        object.__setattr__(self, "tech", os.fspath(self.tech))

    def ber(self, *, voltage: float | None = None, ber: float | None = None) -> float:
        """The bit-error rate at ``voltage`` (V/Vmin) under this chip's technology, or ``ber``
        itself; exactly one of the two must be given."""
        return OperatingPoint.resolve(voltage=voltage, ber=ber, tech=self.tech).ber

    def fault_map(self, n_cells: int, *, voltage: float | None = None, ber: float | None = None,
                  start: int = 0) -> FaultMap:
        """The faulty cells among flat cells ``start .. start + n_cells - 1`` at ``voltage`` (V/Vmin)
        or at bit-error rate ``ber`` (exactly one). A region gives the same cells as the same
        region cut from a larger map."""
        for name, value in (("n_cells", n_cells), ("start", start)):
            check_scalar(value, name, int, min_val=0, allowed="a non-negative integer")
        rate = self.ber(voltage=voltage, ber=ber)
        per_array = self.geometry.cells
        stop = start + n_cells
        first, last = start // per_array, -(-stop // per_array)
        from sramsim import _fault_cells, _parallel  # numba loads with the first kernel call, not with this module

        cells, stuck, hazard = _parallel.parallel(
            _fault_cells.fault_cells, np.uint64(self.seed), first, last, per_array, max_hazard(rate),
            start, stop)
        return FaultMap(cells, stuck, hazard, int(start), int(n_cells), rate,
                        None if voltage is None else float(voltage), self.seed, self.tech,
                        self.geometry)


def load_fault_map(path: str | os.PathLike[str]) -> FaultMap:
    """Load a fault-map file (:meth:`FaultMap.save`'s keys; :func:`sramsim.mapfile.read_fault_map`
    checks them) as a :class:`FaultMap`, e.g. to deploy on it: ``deployment.at(fault_map=...)``.
    The hazards are recomputed from the stored quantiles; the file's ``fault_model`` is a label:
    a deployment applies its own fault model to the map's cells. Anything else (a text file, a torch
    checkpoint, a map with keys missing or inconsistent) raises a one-line ValueError
    ``"not a fault-map file: ..."``."""
    return FaultMap.load(path)
