"""The faulty cells of a region of a chip, sorted, with their stuck values and hazards: the
kernels behind :meth:`sramsim.faults.Chip.fault_map`."""
from __future__ import annotations

import numpy as np
from numba import get_thread_id, njit, prange
from numba.cpython.unsafe.numbers import trailing_zeros

from sramsim._fault_streams import ONE, array_faults
from sramsim._parallel import ARRAYS_PER_CHUNK, chunk_starts, slot_size, unslot


@njit(cache=True)
def _map_buffers(threads, n):
    """Scratch space for :func:`_sorted_array_faults` on arrays of ``n`` cells, one row for each
    of ``threads`` threads: the faults in stream order (cell, hazard), two bitmaps (faulty cells,
    stuck values) and a hazard per cell to sort them, and the sorted output (cell, stuck value,
    hazard)."""
    n_words = (n + 63) // 64
    return (np.empty((threads, n), dtype=np.int64), np.empty((threads, n), dtype=np.float64),
            np.zeros((threads, n_words), dtype=np.uint64), np.zeros((threads, n_words), dtype=np.uint64),
            np.empty((threads, n), dtype=np.float64),
            np.empty((threads, n), dtype=np.int64), np.empty((threads, n), dtype=np.uint8),
            np.empty((threads, n), dtype=np.float64))


@njit(cache=True)
def _map_rows(buffers):
    """The rows of :func:`_map_buffers` that belong to the calling thread."""
    i = get_thread_id()
    return (buffers[0][i], buffers[1][i], buffers[2][i], buffers[3][i], buffers[4][i], buffers[5][i],
            buffers[6][i], buffers[7][i])


@njit(cache=True)
def _sorted_array_faults(seed, array, n, max_hazard, buffers):
    """The faulty cells of one array, in increasing cell order, in the last three ``buffers``
    (one thread's rows of :func:`_map_buffers`); return how many there are. Leaves the bitmaps
    cleared."""
    drawn, drawn_hazard, taken, stuck_bits, hazard_at, cells, stuck, hazard = buffers
    k = array_faults(seed, array, n, max_hazard, taken, stuck_bits, drawn, drawn_hazard)
    for i in range(k):
        hazard_at[drawn[i]] = drawn_hazard[i]
    k = 0
    for w in range(taken.size):
        bits = taken[w]
        values = stuck_bits[w]
        taken[w] = 0
        stuck_bits[w] = 0
        while bits != 0:
            b = np.int64(trailing_zeros(bits))
            bits &= bits - ONE
            cells[k] = w * 64 + b
            stuck[k] = np.uint8((values >> np.uint64(b)) & ONE)
            hazard[k] = hazard_at[w * 64 + b]
            k += 1
    return k


@njit(cache=True)
def _chunk_cells(seed, first, stop, n, max_hazard, lo, hi, buffers, cells, stuck, hazard):
    """Faulty cells with flat index in ``[lo, hi)`` of arrays ``first .. stop - 1`` into ``cells``,
    ``stuck``, ``hazard`` (as many as fit); return how many there are."""
    array_cells, array_stuck, array_hazard = buffers[5], buffers[6], buffers[7]
    count = 0
    for array in range(first, stop):
        k = _sorted_array_faults(seed, array, n, max_hazard, buffers)
        base = np.int64(array) * n
        for i in range(k):
            cell = base + array_cells[i]
            if cell < lo or cell >= hi:
                continue
            if count < cells.size:
                cells[count] = cell
                stuck[count] = array_stuck[i]
                hazard[count] = array_hazard[i]
            count += 1
    return count


@njit(cache=True, parallel=True)
def fault_cells(seed, first_array, stop_array, cells_per_array, max_hazard, lo, hi, threads, slot):
    """Faulty cells with flat index in ``[lo, hi)`` of arrays ``first_array .. stop_array - 1``,
    computed by (at most) ``threads``, numba's current thread count (see
    :func:`sramsim._parallel.parallel`), with slots of ``slot`` cells (0: the expected count of a
    chunk plus 6 sigma).

    Returns (cells int64 sorted, stuck uint8, hazard float64): each cell is faulty at every
    threshold above its hazard.
    """
    n_chunks = (stop_array - first_array + ARRAYS_PER_CHUNK - 1) // ARRAYS_PER_CHUNK
    slot = slot if slot > 0 else slot_size(ARRAYS_PER_CHUNK * cells_per_array, max_hazard)
    cells = np.empty(n_chunks * slot, dtype=np.int64)
    stuck = np.empty(cells.size, dtype=np.uint8)
    hazard = np.empty(cells.size, dtype=np.float64)
    found = np.zeros(n_chunks, dtype=np.int64)
    scratch = _map_buffers(threads, cells_per_array)
    for c in prange(n_chunks):
        first, s = first_array + c * ARRAYS_PER_CHUNK, c * slot
        found[c] = _chunk_cells(seed, first, min(first + ARRAYS_PER_CHUNK, stop_array),
                                cells_per_array, max_hazard, lo, hi, _map_rows(scratch),
                                cells[s:s + slot], stuck[s:s + slot], hazard[s:s + slot])
    starts = chunk_starts(found)
    out_cells = np.empty(starts[-1], dtype=np.int64)
    out_stuck = np.empty(starts[-1], dtype=np.uint8)
    out_hazard = np.empty(starts[-1], dtype=np.float64)
    for c in prange(n_chunks):
        a, b = starts[c], starts[c + 1]
        if found[c] <= slot:
            unslot((out_cells, out_stuck, out_hazard), (cells, stuck, hazard), a, b, c * slot)
        else:
            first = first_array + c * ARRAYS_PER_CHUNK
            _chunk_cells(seed, first, min(first + ARRAYS_PER_CHUNK, stop_array), cells_per_array,
                         max_hazard, lo, hi, _map_rows(scratch), out_cells[a:b], out_stuck[a:b],
                         out_hazard[a:b])
    return out_cells, out_stuck, out_hazard
