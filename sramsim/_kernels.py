"""Numba kernels behind :mod:`sramsim.faults`, :mod:`sramsim.array` and :mod:`sramsim.deployment`.

Plain array arguments only; the public modules validate inputs and call these. Every kernel does
work proportional to the number of faulty cells (plus one 64-bit word per 64 cells of the arrays it
visits), never to the number of stored bits.

The random stream of one array
------------------------------
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
Positions and stuck values are integer arithmetic; the hazards use IEEE double arithmetic and the
C library's ``log``, so a C library whose ``log`` rounds differently could at most move a cell whose
hazard lies within an ulp of a threshold (tested: another process gives the same map). For an array
size that is not a power of two the position draw has a relative bias below ``n / 2**32``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_DEBRUIJN = np.uint64(0x03F79D71B4CA8B09)
_ONE = np.uint64(1)
_TWO_POW_MINUS_53 = 2.0**-53


def _debruijn_table() -> np.ndarray:
    """Trailing-zero count of a 64-bit power of two, indexed by its de Bruijn product's top 6 bits."""
    table = np.zeros(64, dtype=np.int64)
    for i in range(64):
        table[((((1 << i) * int(_DEBRUIJN)) % 2**64) >> 58)] = i
    return table


_TRAILING_ZEROS = _debruijn_table()


@njit(cache=True)
def mix64(z: np.uint64) -> np.uint64:
    """The splitmix64 output function (a bijection of 64-bit words)."""
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def stream_start(seed: np.uint64, array: np.int64) -> np.uint64:
    """Initial splitmix64 state of array ``array`` of the chip seeded with ``seed``."""
    return mix64(mix64(seed + _GAMMA) + mix64(np.uint64(array) * _GAMMA + _GAMMA))


@njit(cache=True)
def _array_faults(seed, array, n, max_hazard, taken, stuck_bits, hazard):
    """Mark the faulty cells of one array in the bitmaps ``taken`` and ``stuck_bits`` and write
    their hazards to ``hazard[cell]``; return how many there are."""
    state = stream_start(seed, array)
    h = 0.0
    k = 0
    while k < n:
        state += _GAMMA
        v = (np.float64(mix64(state) >> np.uint64(11)) + 1.0) * _TWO_POW_MINUS_53
        h -= np.log(v) / (n - k)
        if h >= max_hazard:
            break
        while True:
            state += _GAMMA
            x = mix64(state)
            pos = np.int64(((x >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))
            word, bit = pos >> 6, np.uint64(pos & 63)
            if not (taken[word] >> bit) & _ONE:
                break
        taken[word] |= _ONE << bit
        stuck_bits[word] |= (x & _ONE) << bit
        hazard[pos] = h
        k += 1
    return k


@njit(cache=True)
def _array_buffers(n):
    """Scratch space for :func:`_sorted_array_faults` on arrays of ``n`` cells: two bitmaps, a
    hazard per cell, and the sorted output (cell in array, stuck value, hazard)."""
    n_words = (n + 63) // 64
    return (np.zeros(n_words, dtype=np.uint64), np.zeros(n_words, dtype=np.uint64),
            np.empty(n, dtype=np.float64), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.uint8),
            np.empty(n, dtype=np.float64))


@njit(cache=True)
def _sorted_array_faults(seed, array, n, max_hazard, buffers):
    """The faulty cells of one array, in increasing cell order, in the last three ``buffers``
    (see :func:`_array_buffers`); return how many there are. Leaves the bitmaps cleared."""
    taken, stuck_bits, hazard_at, cells, stuck, hazard = buffers
    _array_faults(seed, array, n, max_hazard, taken, stuck_bits, hazard_at)
    k = 0
    for w in range(taken.size):
        bits = taken[w]
        if bits == 0:
            continue
        values = stuck_bits[w]
        taken[w] = 0
        stuck_bits[w] = 0
        while bits != 0:
            low = bits & (~bits + _ONE)
            b = _TRAILING_ZEROS[np.int64((low * _DEBRUIJN) >> np.uint64(58))]
            bits ^= low
            cells[k] = w * 64 + b
            stuck[k] = np.uint8((values >> np.uint64(b)) & _ONE)
            hazard[k] = hazard_at[w * 64 + b]
            k += 1
    return k


@njit(cache=True)
def fault_cells(seed, first_array, stop_array, cells_per_array, max_hazard, lo, hi, capacity):
    """Faulty cells with flat index in ``[lo, hi)`` of arrays ``first_array .. stop_array - 1``.

    Returns (cells int64 sorted, stuck uint8, hazard float64): each cell is faulty at every
    threshold above its hazard. ``capacity`` is a first guess of the count; buffers grow.
    """
    buffers = _array_buffers(cells_per_array)
    array_cells, array_stuck, array_hazard = buffers[3], buffers[4], buffers[5]
    cells = np.empty(max(capacity, 16), dtype=np.int64)
    stuck = np.empty(cells.size, dtype=np.uint8)
    hazard = np.empty(cells.size, dtype=np.float64)
    count = 0
    for array in range(first_array, stop_array):
        k = _sorted_array_faults(seed, array, cells_per_array, max_hazard, buffers)
        base = np.int64(array) * cells_per_array
        for i in range(k):
            cell = base + array_cells[i]
            if cell < lo or cell >= hi:
                continue
            if count == cells.size:
                cells = np.concatenate((cells, np.empty(cells.size, dtype=np.int64)))
                stuck = np.concatenate((stuck, np.empty(stuck.size, dtype=np.uint8)))
                hazard = np.concatenate((hazard, np.empty(hazard.size, dtype=np.float64)))
            cells[count] = cell
            stuck[count] = array_stuck[i]
            hazard[count] = array_hazard[i]
            count += 1
    return cells[:count], stuck[:count], hazard[:count]


@njit(cache=True)
def _word_of(array, cell, rows, cols, bits):
    """(word, bit) held by cell ``cell`` of array ``array`` under :class:`sramsim.array.MemoryLayout`'s
    packing, or (-1, -1) for a spare column. (32-bit divisions: a cell index is below 2**32.)"""
    row = np.uint32(cell) // np.uint32(cols)
    col = np.uint32(cell) - row * np.uint32(cols)
    slot = col // np.uint32(bits)
    per_row = cols // bits
    if slot >= per_row:
        return -1, -1
    return (array * rows + np.int64(row)) * per_row + np.int64(slot), np.int64(col - slot * np.uint32(bits))


@njit(cache=True)
def cells_to_words(cells, rows, cols, bits, n_words):
    """(word, bit) held by each flat cell index; both -1 for a cell that holds no weight bit
    (spare columns, or past the last word)."""
    per_array = rows * cols
    words = np.empty(cells.size, dtype=np.int64)
    bit = np.empty(cells.size, dtype=np.int64)
    for i in range(cells.size):
        array = cells[i] // per_array
        word, b = _word_of(array, cells[i] - array * per_array, rows, cols, bits)
        if word >= n_words:
            word, b = -1, -1
        words[i], bit[i] = word, b
    return words, bit


@njit(cache=True)
def perturb_chip(seed, n_arrays, rows, cols, bits, max_hazard, q, offsets, flip, index, value, clean):
    """One chip's faults applied to the b-bit two's-complement codes of the integer weights ``q``
    (one stream for all tensors; tensor t is ``q[offsets[t]:offsets[t+1]]``), array by array.

    Stuck-at: a faulty cell's bit becomes its stuck value; flip (``flip=True``): the bit inverts.
    Writes, for each weight whose value changes, in stream order, its index within its tensor,
    its new value and its clean value to ``index``/``value``/``clean`` (grown when full) and
    returns (index, value, clean, number written, counts, faulty cells of all arrays), where
    ``counts[t]`` is (faulty cells, flipped bits, changed weights) of tensor t.
    """
    cells_per_array = rows * cols
    buffers = _array_buffers(cells_per_array)
    cells, stuck = buffers[3], buffers[4]
    counts = np.zeros((offsets.size - 1, 3), dtype=np.int64)
    mask = (1 << bits) - 1
    half = 1 << (bits - 1)
    n_words = q.size
    faulty = 0
    m = 0
    t = 0
    for array in range(n_arrays):
        k = _sorted_array_faults(seed, array, cells_per_array, max_hazard, buffers)
        faulty += k
        i = 0
        while i < k:
            word, b = _word_of(array, cells[i], rows, cols, bits)
            if word < 0 or word >= n_words:
                i += 1
                continue
            while word >= offsets[t + 1]:
                t += 1
            code = np.int64(q[word]) & mask
            new = code
            while True:
                counts[t, 0] += 1
                if flip or (new >> b) & 1 != stuck[i]:
                    new ^= 1 << b
                    counts[t, 1] += 1
                i += 1
                if i == k:
                    break
                next_word, b = _word_of(array, cells[i], rows, cols, bits)
                if next_word != word:
                    break
            if new != code:
                if m == index.size:
                    index = np.concatenate((index, np.empty(index.size + 16, dtype=np.int64)))
                    value = np.concatenate((value, np.empty(value.size + 16, dtype=np.int8)))
                    clean = np.concatenate((clean, np.empty(clean.size + 16, dtype=np.int8)))
                index[m] = word - offsets[t]
                value[m] = new - (1 << bits) if new >= half else new
                clean[m] = q[word]
                counts[t, 2] += 1
                m += 1
    return index, value, clean, m, counts, faulty
