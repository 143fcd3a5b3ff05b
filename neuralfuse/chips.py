"""Chip seed streams: which simulated chips training, validation and evaluation use.

A chip is a seed for :class:`sramsim.Chip` (any int in [0, :data:`sramsim.faults.MAX_SEED`)).
The three streams never meet, so no chip a generator is evaluated or validated on was seen while
it was trained, and no chip that chose an epoch or a setting is one it is evaluated on:

- the *evaluation* stream is the seeds ``0, 1, ..., K-1`` (all below :data:`VALIDATION_SEED_BASE`):
  ``neuralfuse evaluate``, sweeps and the demo;
- the *validation* stream is the seeds ``VALIDATION_SEED_BASE + 0, 1, ..., K-1`` (all below
  :data:`TRAIN_SEED_BASE`): the per-epoch validation of EOPM training;
- the *training* stream derives, from (run seed, epoch, step), N seeds in
  ``[TRAIN_SEED_BASE, MAX_SEED)`` through NumPy's ``SeedSequence`` hash, so a run draws fresh
  chips at every step, the same ones on every machine and after a resume.

    >>> evaluation_chips(3)
    [0, 1, 2]
    >>> validation_chips(2) == [VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + 1]
    True
    >>> seeds = training_chips(seed=0, epoch=0, step=0, n=2)
    >>> all(TRAIN_SEED_BASE <= s < MAX_SEED for s in seeds)
    True

An evaluation or a sweep may run on measured chips instead: fault maps (:func:`sramsim.load_fault_map`,
e.g. files written by ``sramsim faultmap`` or measured on silicon), one per chip. A map holds its
chip's faults at one rate and, nested, at every lower one (:func:`map_at`); its seed names the
chip in results, and :func:`map_fingerprint` tells maps apart in run records.
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

from characterization.validation import check_scalar
from sramsim.faults import MAX_SEED, FaultMap
from sramsim.operating_point import OperatingPoint

VALIDATION_SEED_BASE = 2**39
"""Validation chips are ≥ this; evaluation chips are below it."""
TRAIN_SEED_BASE = 2**40
"""Training chips are ≥ this; validation and evaluation chips are below it."""
STREAM_SIZE = VALIDATION_SEED_BASE
"""How many chips the evaluation and the validation stream each hold."""
_TRAIN_STREAM = 0x4E46_5452  # "NFTR": keeps this hash apart from other uses of the run seed


def evaluation_chips(k: int, first: int = 0) -> list[int]:
    """``k`` chips of the evaluation stream from chip ``first`` on: ``[first, ..., first+k-1]``."""
    check_scalar(k, "number of evaluation chips", int, min_val=1, max_val=STREAM_SIZE,
                 allowed="an integer from 1 to 2**39")
    check_scalar(first, "first evaluation chip", int, min_val=0, max_val=STREAM_SIZE - k,
                 allowed=f"an integer from 0 to 2**39 - {k}")
    return list(range(first, first + k))


def validation_chips(k: int) -> list[int]:
    """The first ``k`` chips of the validation stream, ``[VALIDATION_SEED_BASE + i for i < k]``."""
    check_scalar(k, "number of validation chips", int, min_val=1, max_val=STREAM_SIZE,
                 allowed="an integer from 1 to 2**39")
    return [VALIDATION_SEED_BASE + i for i in range(k)]


def training_chips(seed: int, epoch: int, step: int, n: int) -> list[int]:
    """The ``n`` chips of training step ``step`` of epoch ``epoch`` in the run seeded with ``seed``.

    All arguments are non-negative ints; the result is a deterministic function of them and lies in
    ``[TRAIN_SEED_BASE, MAX_SEED)``, disjoint from every evaluation and validation chip.
    """
    for name, value in (("seed", seed), ("epoch", epoch), ("step", step), ("n", n)):
        check_scalar(value, name, int, min_val=0)
    words = np.random.SeedSequence([_TRAIN_STREAM, seed, epoch, step]).generate_state(n, dtype=np.uint64)
    span = np.uint64(MAX_SEED - TRAIN_SEED_BASE)
    return [TRAIN_SEED_BASE + int(w % span) for w in words]


ChipSpec = int | Sequence[int] | Sequence[FaultMap]
"""The chips of an evaluation or sweep: a count K (evaluation chips 0..K-1), chip seeds, or fault maps."""


def resolve_chips(chips: ChipSpec) -> tuple[list[int], list[FaultMap] | None]:
    """(chip seeds, fault maps or None) of ``chips``; maps must carry distinct seeds, which name
    their chips in results (a ValueError otherwise)."""
    if isinstance(chips, int):
        return evaluation_chips(chips), None
    chips = list(chips)
    if not chips:
        raise ValueError("no chips given: give a count, chip seeds or fault maps")
    if not any(isinstance(c, FaultMap) for c in chips):
        return [int(c) for c in chips], None
    if not all(isinstance(c, FaultMap) for c in chips):
        raise ValueError("give chips as seeds or as fault maps, not both")
    seeds = [m.seed for m in chips]
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise ValueError(f"two fault maps carry chip seed {twice[0]}: the seed names a chip in "
                         "results, so give each chip's map its own seed")
    return seeds, chips


def map_at(fault_map: FaultMap, ber: float) -> FaultMap:
    """``fault_map`` at bit-error rate ``ber``: the map itself at its own rate, else the cells
    faulty at ``ber`` (a lower rate; maps are nested). A higher rate raises a ValueError."""
    if math.isclose(ber, fault_map.ber, rel_tol=1e-12):
        return fault_map
    if ber > fault_map.ber:
        at = "" if fault_map.voltage is None else f" ({fault_map.voltage:g} Vmin)"
        raise ValueError(f"the fault map of chip {fault_map.seed} holds its faults up to BER "
                         f"{fault_map.ber:.4g}{at}, so it cannot run at BER {ber:.4g}: give a map "
                         "measured at a lower voltage, or higher voltages")
    return fault_map.restrict(ber)


def map_point(fault_maps: Sequence[FaultMap]) -> OperatingPoint:
    """The operating point fault maps were made at (their own rate, and voltage where they record
    one), for an evaluation on them at that rate; maps of different rates raise a ValueError."""
    rates = sorted({(m.ber, m.voltage) for m in fault_maps}, key=lambda rate: rate[0])
    if len(rates) != 1:
        listed = ", ".join(f"BER {ber:.4g}" + ("" if v is None else f" ({v:g} Vmin)") for ber, v in rates)
        raise ValueError(f"the fault maps hold different rates ({listed}): give the voltage or BER to "
                         "evaluate them at (--voltage/--ber), at most the lowest of them")
    (ber, voltage), = rates
    return OperatingPoint(ber=ber, voltage=voltage, tech=fault_maps[0].tech)


def map_fingerprint(fault_map: FaultMap) -> str:
    """A short SHA-256 of a fault map's cells, stuck values, hazards, region, rate, seed and tech."""
    g = fault_map.geometry
    digest = hashlib.sha256(repr((fault_map.start, fault_map.n_cells, fault_map.ber, fault_map.seed,
                                  fault_map.tech, g.rows, g.cols)).encode())
    for array in (fault_map.cells, fault_map.stuck, fault_map.hazard):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]
