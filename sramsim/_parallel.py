"""How the parallel kernels (:func:`sramsim._fault_cells.fault_cells`,
:func:`sramsim._perturb.perturb_chip`) share a chip's arrays among numba's threads.

The arrays are cut into chunks of ARRAYS_PER_CHUNK consecutive arrays, handed to numba's threads
one at a time (see :func:`parallel`: a thread that the OS holds back delays one chunk, not a
fixed share of all); each thread has its own scratch space. Each chunk's results go to its own
slot of a buffer sized for the expected count plus 6 sigma (the count goes on past a slot's end
if it is too small). A second parallel pass packs the slots, in chunk order, into the output,
recomputing the rare chunk that overflowed its slot straight into its place. Every array's
results depend on (seed, array) alone and are packed in array order, so the output is the
serial one (one chunk of all arrays) for any number of threads and any slot size (tested). On one
thread with the default slots, :func:`~sramsim._perturb.perturb_chip` runs that serial kernel
straight into its output.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit

ARRAYS_PER_CHUNK = 8


def parallel(kernel, *args):
    """Call a parallel kernel (see the module docstring) with numba's current thread count and
    the default slot size as its last two arguments, handing out prange iterations one at a time."""
    chunksize = numba.set_parallel_chunksize(1)
    try:
        return kernel(*args, numba.get_num_threads(), 0)
    finally:
        numba.set_parallel_chunksize(chunksize)


@njit(cache=True)
def slot_size(n_cells, max_hazard):
    """Slot size for the faulty cells of ``n_cells`` cells: the expected count plus 6 sigma."""
    expected = n_cells * -np.expm1(-max_hazard)
    return np.int64(expected + 6.0 * np.sqrt(expected) + 64.0)


@njit(cache=True)
def chunk_starts(counts):
    """Where each chunk's results start in the packed output, and (last) their total."""
    starts = np.zeros(counts.size + 1, dtype=np.int64)
    starts[1:] = np.cumsum(counts)
    return starts


@njit(cache=True)
def unslot(outputs, slots, a, b, s):
    """Pack one chunk's results: ``outputs[j][a:b]`` from its slot, ``slots[j][s:s + b - a]``."""
    _copy(outputs[0], a, slots[0], s, b - a)
    _copy(outputs[1], a, slots[1], s, b - a)
    _copy(outputs[2], a, slots[2], s, b - a)


@njit(cache=True)
def _copy(out, a, source, s, n):
    """``out[a:a + n] = source[s:s + n]`` (unsigned indices: a loop that compiles to ``memcpy``)."""
    for i in range(np.uint64(n)):
        out[np.uint64(a) + i] = source[np.uint64(s) + i]
