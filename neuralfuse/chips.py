"""Chip seed streams: which simulated chips training draws and which ones evaluation uses.

A chip is a seed for :class:`sramsim.faults.Chip` (any int in [0, 2**63)). The two streams never
meet, so no chip that a generator was evaluated on was seen while it was trained:

- the *evaluation* stream is the seeds ``0, 1, ..., K-1`` (all below :data:`TRAIN_SEED_BASE`);
- the *training* stream derives, from (run seed, epoch, step), N seeds in
  ``[TRAIN_SEED_BASE, 2**63)`` through NumPy's ``SeedSequence`` hash, so a run draws fresh chips at
  every step, the same ones on every machine and after a resume.

    >>> evaluation_chips(3)
    [0, 1, 2]
    >>> seeds = training_chips(seed=0, epoch=0, step=0, n=2)
    >>> all(TRAIN_SEED_BASE <= s < 2**63 for s in seeds)
    True
"""
from __future__ import annotations

import numpy as np

TRAIN_SEED_BASE = 2**40
"""Training chips are ≥ this; evaluation chips are below it."""
MAX_SEED = 2**63
_TRAIN_STREAM = 0x4E46_5452  # "NFTR": keeps this hash apart from other uses of the run seed


def evaluation_chips(k: int, first: int = 0) -> list[int]:
    """``k`` chips of the evaluation stream from chip ``first`` on: ``[first, ..., first+k-1]``."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= TRAIN_SEED_BASE:
        raise ValueError(f"number of evaluation chips {k!r} is not valid: use an integer from 1 to 2**40")
    if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first <= TRAIN_SEED_BASE - k:
        raise ValueError(f"first evaluation chip {first!r} is not valid: use an integer from 0 to 2**40 - {k}")
    return list(range(first, first + k))


def training_chips(seed: int, epoch: int, step: int, n: int) -> list[int]:
    """The ``n`` chips of training step ``step`` of epoch ``epoch`` in the run seeded with ``seed``.

    All arguments are non-negative ints; the result is a deterministic function of them and lies in
    ``[TRAIN_SEED_BASE, 2**63)``, disjoint from every evaluation chip.
    """
    for name, value in (("seed", seed), ("epoch", epoch), ("step", step), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name}={value!r} is not valid: use a non-negative integer")
    words = np.random.SeedSequence([_TRAIN_STREAM, seed, epoch, step]).generate_state(n, dtype=np.uint64)
    span = np.uint64(MAX_SEED - TRAIN_SEED_BASE)
    return [TRAIN_SEED_BASE + int(w % span) for w in words]
