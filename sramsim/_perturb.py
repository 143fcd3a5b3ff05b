"""A chip's faults applied to a deployment's stored integer weights: the numba kernel behind
:class:`sramsim.Deployment` (:func:`perturb_chip`).

Per array of the chip, its faults are drawn into bitmaps (:func:`sramsim._fault_streams.array_faults`)
and gathered per stored word; then each tensor's words get their faults in one SIMD pass, and the
words whose codes change are listed in increasing order, 64 at a time (:func:`_apply_words`): the
output is in stream order without sorting the cells, and no branch depends on a word's data.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import get_thread_id, njit, prange
from numba.cpython.unsafe.numbers import trailing_zeros

from sramsim._addressing import column_table, word_in_array
from sramsim._bits import bits_set, nonzero_bits, popcount
from sramsim._fault_streams import ONE, array_faults
from sramsim._parallel import ARRAYS_PER_CHUNK, chunk_starts, slot_size, unslot


class ChipFaults(NamedTuple):
    """One chip's faults as :func:`perturb_chip` applies them: ``seed`` and the hazard threshold
    ``max_hazard`` of the rate (:func:`sramsim.faults.max_hazard`) choose the faulty cells; with
    ``flip`` a faulty cell inverts its bit, else it reads its stuck value; the codes are b-bit two's
    complement XOR ``code_xor`` (:meth:`sramsim.storage.StorageFormat.code_xor`)."""

    seed: np.uint64
    max_hazard: float
    flip: bool
    code_xor: int


class WordArrays(NamedTuple):
    """``bits``-bit words stored in arrays of ``rows`` x ``cols`` cells, packed as
    :class:`sramsim.array.MemoryLayout` packs them."""

    rows: int
    cols: int
    bits: int


@njit(cache=True)
def _padded(n):
    """Room for ``n`` bytes and one more 64-byte block (:func:`sramsim._bits.nonzero_bits`), a
    multiple of 64."""
    return (n + 63) // 64 * 64 + 64


@njit(cache=True)
def _perturb_buffers(threads, arrays):
    """Scratch space for :func:`_perturb_arrays` on ``arrays`` (:class:`WordArrays`), one row for
    each of ``threads`` threads: the faulty-cell and stuck-value bitmaps of an array (one bit per
    cell), its faulty cells in stream order, and per word its faulty bits, their stuck values and
    the bits that its faults change."""
    n = arrays.rows * arrays.cols
    cell_bytes, word_bytes = _padded((n + 7) // 8), _padded(arrays.rows * (arrays.cols // arrays.bits))
    return (np.zeros((threads, cell_bytes), dtype=np.uint8), np.zeros((threads, cell_bytes), dtype=np.uint8),
            np.empty((threads, n), dtype=np.uint64), np.zeros((threads, word_bytes), dtype=np.uint8),
            np.zeros((threads, word_bytes), dtype=np.uint8), np.zeros((threads, word_bytes), dtype=np.uint8))


@njit(cache=True)
def _perturb_rows(buffers):
    """The rows of :func:`_perturb_buffers` that belong to the calling thread."""
    i = get_thread_id()
    return (buffers[0][i], buffers[1][i], buffers[2][i], buffers[3][i], buffers[4][i], buffers[5][i])


@njit(cache=True)
def _changed_bits(masks, lo, hi, q, code):
    """``diff[w]``: the bits of word w's code that its faults change, for w in ``lo .. hi - 1``
    (arguments as :func:`_apply_words`'s): a loop that the compiler vectorizes."""
    faults, stuck, diff = masks
    mask, xor, flip = code
    invert = np.uint8(0xFF) if flip else np.uint8(0)   # a faulty bit takes ~code (flip) or its stuck value
    keep = ~invert
    for w in range(np.uint64(lo), np.uint64(hi)):
        stored = (np.uint8(q[w]) & mask) ^ xor
        diff[w] = faults[w] & (stored ^ ((~stored & invert) | (stuck[w] & keep)))


@njit(cache=True)
def _write_entry(out, m, w, q, diff, mask, half, index_base):
    """Entry ``m`` of ``out`` (index, value, clean) for word ``w`` of the array: ``index_base``
    plus ``w``, the integer its new code reads as, its clean integer."""
    index, value, clean = out
    read = np.int64((np.uint8(q[w]) & mask) ^ diff[w])   # the new code XOR xor
    index[np.uint64(m)] = index_base + np.int64(w)
    value[np.uint64(m)] = read - ((read & half) << 1)
    clean[np.uint64(m)] = q[w]


@njit(cache=True)
def _apply_words(masks, lo, hi, q, code, out, m, index_base):
    """Apply the faults of words ``lo .. hi - 1`` of an array (one tensor's) to their codes.

    ``masks`` is (per word of the array: its faulty bits, their stuck values, and where the bits
    that its faults change are written), ``q`` the array's integers, ``code`` (the b-bit code mask,
    the XOR of the stored codes, whether faults flip bits), ``out`` (index, value, clean). For
    each word whose code changes, in increasing order, from entry ``m`` on (as many as fit),
    writes ``index_base`` plus its index, the integer its new code reads as and its clean
    integer. Returns (``m`` plus the number of such words, faulty bits, flipped bits).

    One pass over every word in SIMD (a word not faulty changes nothing), then, 64 words at a
    time, the changed ones, the first four of a block without a branch (a block has 2.5 at 1%
    BER): no work per faulty cell, no data-dependent branch per word."""
    faults, _, diff = masks
    mask = code[0]
    index = out[0]
    half = np.int64(mask + 1) >> 1
    _changed_bits(masks, lo, hi, q, code)
    for base in range(lo - lo % 64, hi, 64):
        changed = nonzero_bits(diff, base)
        if base < lo:
            changed &= ~((ONE << np.uint64(lo - base)) - ONE)
        if hi - base < 64:
            changed &= (ONE << np.uint64(hi - base)) - ONE
        if changed == 0:   # most blocks at a low BER
            continue
        count = np.int64(popcount(changed))
        r = 0
        if m + 64 <= index.size:   # room for the whole block: the first four entries whether or not
            last = np.uint64(min(hi - base, 64) - 1)   # there are that many (no branch for them)
            for r in range(4):
                w = np.uint64(base) + min(np.uint64(trailing_zeros(changed)), last)
                _write_entry(out, m + r, w, q, diff, mask, half, index_base)
                changed &= changed - ONE
            r = 4
        while changed != 0:
            if m + r < index.size:
                _write_entry(out, m + r, np.uint64(base) + np.uint64(trailing_zeros(changed)), q, diff, mask,
                             half, index_base)
            changed &= changed - ONE
            r += 1
        m += count
    return m, bits_set(faults, lo, hi), bits_set(diff, lo, hi)


@njit(cache=True)
def _perturb_arrays(faults, arrays, first, stop, q, offsets, scratch, out, counts):
    """The :class:`ChipFaults` ``faults`` of arrays ``first .. stop - 1`` (:class:`WordArrays`
    ``arrays``) applied to the codes of ``q`` (see :func:`perturb_chip`), with one thread's rows
    of :func:`_perturb_buffers` as ``scratch``: writes as many changed weights as fit to ``out``
    (index, value, clean), adds to ``counts``; returns (changed weights, faulty cells).

    Per array: draw its faults into bitmaps; gather them per word (with 8-bit words and a multiple
    of 8 columns, byte w of the cell bitmaps is word w's masks already); then apply them to each
    tensor's words in increasing order (:func:`_apply_words`).
    """
    taken, stuck, drawn, fault_mask, stuck_mask, diff = scratch
    rows, cols, bits = arrays
    cells_per_array, per_row, table = rows * cols, cols // bits, column_table(cols, bits)
    inv_cols = 1.0 / cols
    words_per_array = rows * per_row
    byte_words = bits == 8 and cols % 8 == 0
    if byte_words:
        fault_mask, stuck_mask = taken, stuck
    no_cells, no_hazard = np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.float64)
    code = (np.uint8((1 << bits) - 1), np.uint8(faults.code_xor), faults.flip)
    t = min(np.searchsorted(offsets, np.int64(first) * words_per_array, side="right") - 1,
            offsets.size - 2)
    faulty = 0
    m = 0
    for array in range(first, stop):
        k = array_faults(faults.seed, array, cells_per_array, faults.max_hazard, taken, stuck,
                         no_cells if byte_words else drawn, no_hazard)
        faulty += k
        if not byte_words:
            for i in range(k):
                pos = drawn[i]
                w, b = word_in_array(np.int64(pos), cols, inv_cols, per_row, table)
                if w < 0:  # a spare column
                    continue
                value_bit = np.uint8((stuck[pos >> np.uint64(3)] >> (pos & np.uint64(7))) & ONE)
                fault_mask[w] |= np.uint8(1 << b)
                stuck_mask[w] |= np.uint8(value_bit << b)
        first_word = np.int64(array) * words_per_array
        end = min(words_per_array, q.size - first_word)   # the words that hold weights
        array_q = q[first_word:first_word + end]
        lo = 0
        while lo < end:   # one tensor's words at a time
            while offsets[t + 1] <= first_word + lo:
                t += 1
            hi = min(end, offsets[t + 1] - first_word)
            start = m
            m, faulty_bits, flipped = _apply_words((fault_mask, stuck_mask, diff), lo, hi, array_q, code,
                                                   out, m, first_word - offsets[t])
            counts[t, 0] += faulty_bits
            counts[t, 1] += flipped
            counts[t, 2] += m - start
            lo = hi
        taken[:] = 0
        stuck[:] = 0
        if not byte_words:
            fault_mask[:] = 0
            stuck_mask[:] = 0
    return m, faulty


@njit(cache=True)
def _perturb_serial(faults, arrays, n_arrays, q, offsets, buffers):
    """:func:`perturb_chip` on one thread: all arrays as one chunk, written straight to the output
    (sized for the expected number of faulty cells plus 6 sigma, and run again, larger, in the
    rare case that is too small)."""
    index, value, clean = buffers[0], buffers[1], buffers[2]
    scratch = _perturb_rows(_perturb_buffers(1, arrays))
    counts = np.zeros((offsets.size - 1, 3), dtype=np.int64)
    size = slot_size(n_arrays * arrays.rows * arrays.cols, faults.max_hazard)
    while True:
        if index.size < size:
            index = np.empty(size, dtype=np.int64)
            value = np.empty(size, dtype=np.int8)
            clean = np.empty(size, dtype=np.int8)
        counts[:] = 0
        m, faulty = _perturb_arrays(faults, arrays, 0, n_arrays, q, offsets, scratch, (index, value, clean),
                                    counts)
        if m <= index.size:
            return (index, value, clean, buffers[3], buffers[4], buffers[5]), m, counts, faulty
        size = m


@njit(cache=True, parallel=True)
def perturb_chip(faults, arrays, n_arrays, q, offsets, buffers, threads, slot):
    """One chip's faults (:class:`ChipFaults`) applied to the b-bit codes of the integer weights
    ``q`` stored in ``n_arrays`` arrays (:class:`WordArrays`; one stream for all tensors, tensor t
    is ``q[offsets[t]:offsets[t+1]]``), computed by (at most) ``threads``, numba's current thread
    count (see :func:`sramsim._parallel.parallel`), with slots of ``slot`` weights (0: the expected
    number of faulty cells of a chunk plus 6 sigma, enough but for rare chunks, as a weight changes
    only where a cell is faulty). One thread with the default slots runs the serial kernel, all
    arrays as one chunk, into the output itself (the same results).

    Writes, for each weight whose code changes, in stream order, its index within its tensor, the
    integer its new code reads as and its clean integer to the first three ``buffers`` (int64,
    int8, int8; the last three are scratch of the same types) and returns (buffers, grown where
    too small, number written, counts, faulty cells of all arrays), where ``counts[t]`` is
    (faulty cells, flipped bits, changed weights) of tensor t.
    """
    if threads == 1 and slot == 0:
        return _perturb_serial(faults, arrays, n_arrays, q, offsets, buffers)
    index, value, clean, s_index, s_value, s_clean = buffers
    n_tensors = offsets.size - 1
    n_chunks = (n_arrays + ARRAYS_PER_CHUNK - 1) // ARRAYS_PER_CHUNK
    slot = slot if slot > 0 else slot_size(ARRAYS_PER_CHUNK * arrays.rows * arrays.cols, faults.max_hazard)
    if s_index.size < n_chunks * slot:
        s_index = np.empty(n_chunks * slot, dtype=np.int64)
        s_value = np.empty(n_chunks * slot, dtype=np.int8)
        s_clean = np.empty(n_chunks * slot, dtype=np.int8)
    changed = np.zeros(n_chunks, dtype=np.int64)
    faulty = np.zeros(n_chunks, dtype=np.int64)
    scratch = _perturb_buffers(threads, arrays)
    thread_counts = np.zeros((threads, n_tensors, 3), dtype=np.int64)
    for c in prange(n_chunks):
        first, s = c * ARRAYS_PER_CHUNK, c * slot
        changed[c], faulty[c] = _perturb_arrays(
            faults, arrays, first, min(first + ARRAYS_PER_CHUNK, n_arrays), q, offsets, _perturb_rows(scratch),
            (s_index[s:s + slot], s_value[s:s + slot], s_clean[s:s + slot]), thread_counts[get_thread_id()])
    starts = chunk_starts(changed)
    total = starts[-1]
    if index.size < total:
        index = np.empty(total, dtype=np.int64)
        value = np.empty(total, dtype=np.int8)
        clean = np.empty(total, dtype=np.int8)
    for c in prange(n_chunks):
        a, b = starts[c], starts[c + 1]
        if changed[c] <= slot:
            unslot((index, value, clean), (s_index, s_value, s_clean), a, b, c * slot)
        else:
            first = c * ARRAYS_PER_CHUNK
            _perturb_arrays(faults, arrays, first, min(first + ARRAYS_PER_CHUNK, n_arrays), q, offsets,
                            _perturb_rows(scratch), (index[a:b], value[a:b], clean[a:b]),
                            np.zeros((n_tensors, 3), np.int64))
    counts = np.zeros((n_tensors, 3), dtype=np.int64)
    for i in range(thread_counts.shape[0]):
        counts += thread_counts[i]
    return (index, value, clean, s_index, s_value, s_clean), total, counts, faulty.sum()
