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
"""
from __future__ import annotations

import numpy as np

from characterization.validation import check_scalar
from sramsim.faults import MAX_SEED

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
