"""The random stream of each array of a chip, and the faulty cells drawn from it (numba kernels).

Each array of ``n`` cells has its own splitmix64 stream, keyed by (chip seed, array index), so any
array can be generated alone, in any order, with integer arithmetic that is identical on every
machine. Along that stream the array's cells are drawn in increasing order of their failure
quantile ``u`` (the uniform variable of the cell: the cell is faulty at bit-error rate ``p`` iff
``u < p``, i.e. its critical voltage is ``voltage_at_ber(u)``). The kernels work with the cell's
hazard ``h = -log(1 - u)`` (faulty iff ``h < -log1p(-p)``, a threshold the caller computes once).
Draw ``k = 0, 1, ...``:

1. ``h += E / (n - k)`` with ``E = -log(V)``, ``V`` uniform in (0, 1] from the top 53 bits of one
   output (Rényi's representation of the order statistics of ``n`` uniforms as exponential
   spacings); stop as soon as ``h`` reaches the threshold;
2. the cell's position: ``(x >> 32) * n >> 32`` of the next output ``x``, redrawn while that cell is
   already taken (a bitmap), so it is uniform over the cells not yet drawn;
3. its stuck value: the lowest bit of that same accepted output.

A map at a lower rate is therefore a prefix of each array's stream: maps are nested by construction.
Positions and stuck values are integer arithmetic. The hazards are IEEE double arithmetic, the
logarithm included (:func:`_log_uniform`: basic operations and a table of logarithms computed with
:mod:`decimal`, not the C library's ``log``), and so are the thresholds
(:func:`sramsim.faults.max_hazard`): a map is the same bits on every machine. For an
array size that is not a power of two the position draw has a relative bias below ``n / 2**32``.
"""
from __future__ import annotations

import decimal

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import leading_zeros

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
ONE = np.uint64(1)


def _decimal_log(x: float) -> decimal.Decimal:
    """The natural logarithm of ``x`` to 40 digits (pure software: the same on every machine)."""
    with decimal.localcontext() as context:
        context.prec = 40
        return decimal.Decimal(x).ln()


# The logarithm of a uniform draw x 2**-53 (see :func:`_log_uniform`): with 2**p <= x < 2**(p+1) and
# f = x 2**-p in [1, 2), log(x 2**-53) = (p - 53) log 2 + log c + log(f / c), where c is the centre
# of the one of 2**_LOG_BITS equal intervals of [1, 2) that holds f, and log(f / c) = 2 atanh(s)
# with s = (f - c) / (f + c), |s| < 2**-9, summed to the s**5 term (the rest is below 4e-20).
# log 2 is split in two so that (p - 53) times the first part is exact.
_LOG_BITS = 7
_CENTRES = 1.0 + (np.arange(2**_LOG_BITS) + 0.5) / 2**_LOG_BITS
_LOG_CENTRES = np.array([float(_decimal_log(c)) for c in _CENTRES])
_POW2_NEG = 2.0 ** -np.arange(64.0)
_LN2 = _decimal_log(2)
_LN2_HI = np.floor(float(_LN2) * 2.0**32) * 2.0**-32
_LN2_LO = float(_LN2 - decimal.Decimal(_LN2_HI))


@njit(cache=True)
def mix64(z: np.uint64) -> np.uint64:
    """The splitmix64 output function (a bijection of 64-bit words)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _log_uniform(x: np.uint64) -> float:
    """``log(x * 2**-53)`` for an integer ``1 <= x <= 2**53``, within ``2**-52 * max(1, |log|)`` of
    the exact value (tested): IEEE operations only, no ``log`` call."""
    p = 63 - np.int64(leading_zeros(x))
    f = np.float64(np.int64(x)) * _POW2_NEG[p]
    # the _LOG_BITS bits after the leading one (a shift by 64 would be undefined: x = 1 has none)
    i = np.int64((x << np.uint64(64 - p)) >> np.uint64(64 - _LOG_BITS)) if p > 0 else 0
    c = _CENTRES[i]
    s = (f - c) / (f + c)
    z = s * s
    k = np.float64(p - 53)
    return k * _LN2_HI + (k * _LN2_LO + _LOG_CENTRES[i] + (2.0 * s + s * z * (2.0 / 3.0 + z * 0.4)))


@njit(cache=True)
def stream_start(seed: np.uint64, array: np.int64) -> np.uint64:
    """Initial splitmix64 state of array ``array`` of the chip seeded with ``seed``."""
    return mix64(mix64(seed + _GAMMA) + mix64(np.uint64(array) * _GAMMA + _GAMMA))


@njit(cache=True)
def array_faults(seed, array, n, max_hazard, taken, stuck, cells, hazard):
    """Draw the faulty cells of one array in stream order: mark each in the bitmap ``taken`` and
    its stuck value in the bitmap ``stuck`` (cell c is bit c % B of element c // B, B the bits of
    their dtype, uint8 or uint64; the caller clears them) and, unless they are empty, write its
    cell (within the array) to ``cells[k]`` and its hazard to ``hazard[k]``; return how many there
    are."""
    state = stream_start(seed, array)
    unit = np.uint64(taken.itemsize * 8)
    keep_cells, keep_hazard = cells.size > 0, hazard.size > 0
    h = 0.0
    k = 0
    while k < n:
        state += _GAMMA
        h -= _log_uniform((mix64(state) >> np.uint64(11)) + ONE) / (n - k)
        if h >= max_hazard:
            break
        while True:
            state += _GAMMA
            x = mix64(state)
            pos = ((x >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32)
            element, bit = pos // unit, pos % unit
            if not (taken[element] >> bit) & ONE:
                break
        taken[element] |= ONE << bit
        stuck[element] |= (x & ONE) << bit
        if keep_cells:
            cells[k] = pos
        if keep_hazard:
            hazard[k] = h
        k += 1
    return k
