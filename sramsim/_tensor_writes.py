"""Writing a deployment's stored tensors: the numba kernels behind :mod:`sramsim._writes`.

Each write is one parallel call over pieces of many tensors (``flats``: a typed list of flat
float32 or float64 arrays; ``chunks`` from :func:`chunk_table`). A
weight is ``q * scale + offset`` in float64 rounded to the tensor's type, as
:meth:`sramsim.storage.StorageFormat.dequantize` computes it; with offset 0 (symmetric) that is
the product alone, which is exact in float64, so it equals NumPy's product in the tensor's type.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from sramsim._stores import stream_scaled


@njit(cache=True)
def chunk_table(members, starts, stops, size):
    """Rows (member, start, stop) cutting each range ``[starts[i], stops[i])`` of
    ``members[i]`` into pieces of at most ``size``: the work items of the kernels below."""
    n = 0
    for i in range(members.size):
        n += (max(stops[i] - starts[i], 0) + size - 1) // size
    table = np.empty((n, 3), dtype=np.int64)
    row = 0
    for i in range(members.size):
        for a in range(starts[i], stops[i], size):
            table[row, 0], table[row, 1], table[row, 2] = members[i], a, min(a + size, stops[i])
            row += 1
    return table


@njit(cache=True, parallel=True)
def scatter_scaled(flats, scales, shifts, index, q, chunks):
    """``flats[m][index[i]] = q[i] * scales[m] + shifts[m]`` for the entries ``i`` of each chunk
    ``(m, a, b)``."""
    for c in prange(chunks.shape[0]):
        flat, scale, shift = flats[chunks[c, 0]], scales[chunks[c, 0]], shifts[chunks[c, 0]]
        for i in range(chunks[c, 1], chunks[c, 2]):
            flat[index[i]] = np.float64(q[i]) * scale + shift


@njit(cache=True, parallel=True)
def write_scaled(flats, qs, scales, shifts, chunks, index, q_at, starts, stops, streaming):
    """``flats[m][a:b] = qs[m][a:b] * scales[m] + shifts[m]`` for each chunk ``(m, a, b)``, where, unless
    ``starts`` is empty, the entries ``i`` of ``starts[m]:stops[m]`` (``index`` increasing there)
    that fall in ``[a, b)`` write ``q_at[i]`` in place of ``qs[m][index[i]]``: patched into a copy
    of the chunk's integers in cache, so that the chunk is written once. With ``streaming``, with
    streaming stores (:mod:`sramsim._stores`)."""
    for c in prange(chunks.shape[0]):
        m, a, b = chunks[c, 0], chunks[c, 1], chunks[c, 2]
        q = qs[m][a:b]
        if starts.size:
            entries = index[starts[m]:stops[m]]
            first, stop = starts[m] + np.searchsorted(entries, a), starts[m] + np.searchsorted(entries, b)
            if first < stop:
                q = q.copy()
                for i in range(np.uint64(first), np.uint64(stop)):   # unsigned: no wraparound checks
                    q[np.uint64(index[i] - a)] = q_at[i]
        out, scale, shift = flats[m][a:b], scales[m], shifts[m]
        if streaming:
            stream_scaled(out, q, scale, shift)
        else:
            for i in range(out.size):  # slices: indices from 0 need no wraparound check, so SIMD
                out[i] = np.float64(q[i]) * scale + shift
