"""Numba kernels behind :mod:`sramsim.faults`, :mod:`sramsim.array` and :mod:`sramsim.deployment`.

Plain array arguments only; the public modules validate inputs and call these. Every kernel does
work proportional to the number of faulty cells, plus a pass over the bitmaps of the arrays it
visits (one bit per cell) and, applying a chip to the weights, a SIMD pass over their integers
(one byte per weight).

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
Positions and stuck values are integer arithmetic. The hazards are IEEE double arithmetic, the
logarithm included (:func:`_log_uniform`: basic operations and a table of logarithms computed with
:mod:`decimal`, not the C library's ``log``), and so are the thresholds
(:func:`sramsim.faults.max_hazard`): a map is the same bits on every machine. For an
array size that is not a power of two the position draw has a relative bias below ``n / 2**32``.
"""
from __future__ import annotations

import decimal

import numba
import numpy as np
from llvmlite import ir
from numba import get_thread_id, njit, prange, types
from numba.extending import intrinsic
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros

from sramsim._stores import stream_scaled

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_ONE = np.uint64(1)


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
def _array_faults(seed, array, n, max_hazard, taken, stuck, cells, hazard):
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
        h -= _log_uniform((mix64(state) >> np.uint64(11)) + _ONE) / (n - k)
        if h >= max_hazard:
            break
        while True:
            state += _GAMMA
            x = mix64(state)
            pos = ((x >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32)
            element, bit = pos // unit, pos % unit
            if not (taken[element] >> bit) & _ONE:
                break
        taken[element] |= _ONE << bit
        stuck[element] |= (x & _ONE) << bit
        if keep_cells:
            cells[k] = pos
        if keep_hazard:
            hazard[k] = h
        k += 1
    return k


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
    k = _array_faults(seed, array, n, max_hazard, taken, stuck_bits, drawn, drawn_hazard)
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
            bits &= bits - _ONE
            cells[k] = w * 64 + b
            stuck[k] = np.uint8((values >> np.uint64(b)) & _ONE)
            hazard[k] = hazard_at[w * 64 + b]
            k += 1
    return k


# Parallel kernels
# ----------------
# The arrays are cut into chunks of ARRAYS_PER_CHUNK consecutive arrays, handed to numba's threads
# one at a time (see :func:`parallel`: a thread that the OS holds back delays one chunk, not a
# fixed share of all); each thread has its own scratch space. Each chunk's results go to its own
# slot of a buffer sized for the expected count plus 6 sigma (the count goes on past a slot's end
# if it is too small). A second parallel pass packs the slots, in chunk order, into the output,
# recomputing the rare chunk that overflowed its slot straight into its place. Every array's
# results depend on (seed, array) alone and are packed in array order, so the output is the
# serial one (one chunk of all arrays) for any number of threads and any slot size (tested).
ARRAYS_PER_CHUNK = 8


def parallel(kernel, *args):
    """Call a parallel kernel of this module with numba's current thread count and the default
    slot size as its last two arguments, handing out prange iterations one at a time."""
    chunksize = numba.set_parallel_chunksize(1)
    try:
        return kernel(*args, numba.get_num_threads(), 0)
    finally:
        numba.set_parallel_chunksize(chunksize)


@njit(cache=True)
def _slot_size(n_cells, max_hazard):
    """Slot size for the faulty cells of ``n_cells`` cells: the expected count plus 6 sigma."""
    expected = n_cells * -np.expm1(-max_hazard)
    return np.int64(expected + 6.0 * np.sqrt(expected) + 64.0)


@njit(cache=True)
def _starts(counts):
    """Where each chunk's results start in the packed output, and (last) their total."""
    starts = np.zeros(counts.size + 1, dtype=np.int64)
    starts[1:] = np.cumsum(counts)
    return starts


@njit(cache=True)
def _unslot(outputs, slots, a, b, s):
    """Pack one chunk's results: ``outputs[j][a:b]`` from its slot, ``slots[j][s:s + b - a]``."""
    _copy(outputs[0], a, slots[0], s, b - a)
    _copy(outputs[1], a, slots[1], s, b - a)
    _copy(outputs[2], a, slots[2], s, b - a)


@njit(cache=True)
def _copy(out, a, source, s, n):
    """``out[a:a + n] = source[s:s + n]`` (unsigned indices: a loop that compiles to ``memcpy``)."""
    for i in range(np.uint64(n)):
        out[np.uint64(a) + i] = source[np.uint64(s) + i]


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
    computed by (at most) ``threads``, numba's current thread count (see :func:`parallel`), with
    slots of ``slot`` cells (0: the expected count of a chunk plus 6 sigma).

    Returns (cells int64 sorted, stuck uint8, hazard float64): each cell is faulty at every
    threshold above its hazard.
    """
    n_chunks = (stop_array - first_array + ARRAYS_PER_CHUNK - 1) // ARRAYS_PER_CHUNK
    slot = slot if slot > 0 else _slot_size(ARRAYS_PER_CHUNK * cells_per_array, max_hazard)
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
    starts = _starts(found)
    out_cells = np.empty(starts[-1], dtype=np.int64)
    out_stuck = np.empty(starts[-1], dtype=np.uint8)
    out_hazard = np.empty(starts[-1], dtype=np.float64)
    for c in prange(n_chunks):
        a, b = starts[c], starts[c + 1]
        if found[c] <= slot:
            _unslot((out_cells, out_stuck, out_hazard), (cells, stuck, hazard), a, b, c * slot)
        else:
            first = first_array + c * ARRAYS_PER_CHUNK
            _chunk_cells(seed, first, min(first + ARRAYS_PER_CHUNK, stop_array), cells_per_array,
                         max_hazard, lo, hi, _map_rows(scratch), out_cells[a:b], out_stuck[a:b],
                         out_hazard[a:b])
    return out_cells, out_stuck, out_hazard


@njit(cache=True)
def _column_table(cols, bits):
    """Per column of a row: the slot of the word it holds and which bit of it, or -1 (a spare
    column), as a (cols, 2) table, under :class:`sramsim.array.MemoryLayout`'s packing."""
    per_row = cols // bits
    table = np.full((cols, 2), -1, dtype=np.int64)
    for col in range(per_row * bits):
        table[col, 0], table[col, 1] = col // bits, col % bits
    return table


@njit(cache=True)
def _word_in_array(cell, cols, inv_cols, per_row, table):
    """(word within its array, bit) held by cell ``cell`` (below 2**32) of an array, or (-1, -1)
    for a spare column (``table`` from :func:`_column_table`, ``inv_cols`` = 1 / cols). The row is
    a product by the reciprocal, off by at most one and corrected: an integer division would keep
    the divider busy for tens of cycles per faulty cell, and two threads on one core share it."""
    row = np.int64(np.float64(cell) * inv_cols)
    col = cell - row * cols
    if col >= cols:
        row, col = row + 1, col - cols
    elif col < 0:
        row, col = row - 1, col + cols
    slot = table[col, 0]
    if slot < 0:
        return -1, -1
    return row * per_row + slot, table[col, 1]


@njit(cache=True)
def _word_of(array, cell, rows, cols, inv_cols, per_row, table):
    """(word, bit) held by cell ``cell`` of array ``array``, or (-1, -1) for a spare column."""
    word, bit = _word_in_array(cell, cols, inv_cols, per_row, table)
    if word < 0:
        return -1, -1
    return np.int64(array) * rows * per_row + word, bit


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


# The two writes of a deployment's tensors, one parallel call over pieces of many tensors
# (``flats``: a typed list of flat float32 or float64 arrays; ``chunks`` from chunk_table). A
# weight is ``q * scale + offset`` in float64 rounded to the tensor's type, as
# :meth:`sramsim.storage.StorageFormat.dequantize` computes it; with offset 0 (symmetric) that is
# the product alone, which is exact in float64, so it equals NumPy's product in the tensor's type.

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
            i = starts[m] + np.searchsorted(index[starts[m]:stops[m]], a)
            if i < stops[m] and index[i] < b:
                q = q.copy()
                while i < stops[m] and index[i] < b:
                    q[index[i] - a] = q_at[i]
                    i += 1
        out, scale, shift = flats[m][a:b], scales[m], shifts[m]
        if streaming:
            stream_scaled(out, q, scale, shift)
        else:
            for i in range(out.size):  # slices: indices from 0 need no wraparound check, so SIMD
                out[i] = np.float64(q[i]) * scale + shift


@njit(cache=True, parallel=True)
def cells_to_words(cells, rows, cols, bits, n_words):
    """(word, bit) held by each flat cell index; both -1 for a cell that holds no weight bit
    (spare columns, or past the last word)."""
    per_array, per_row, table = rows * cols, cols // bits, _column_table(cols, bits)
    inv_cols = 1.0 / cols
    words = np.empty(cells.size, dtype=np.int64)
    bit = np.empty(cells.size, dtype=np.int64)
    for i in prange(cells.size):
        array = cells[i] // per_array
        word, b = _word_of(array, cells[i] - array * per_array, rows, cols, inv_cols, per_row, table)
        if word >= n_words:
            word, b = -1, -1
        words[i], bit[i] = word, b
    return words, bit


@intrinsic
def _popcount(typingctx, x):
    """The number of bits set in the unsigned integer ``x`` (LLVM's ``ctpop``: one instruction)."""
    if not isinstance(x, types.Integer) or x.signed:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])
    return x(x), codegen


@intrinsic
def _nonzero_bits(typingctx, a, start):
    """A uint64 whose bit j is set iff ``a[start + j]`` is not 0, for j < 64 (``a`` a C-contiguous
    uint8 array with at least ``start + 64`` elements): one 64-byte load and compare. Bit j is
    element j on a little-endian CPU, as all of numba's targets are."""
    if not (isinstance(a, types.Array) and a.layout == "C" and a.dtype == types.uint8
            and isinstance(start, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        block = ir.VectorType(ir.IntType(8), 64)
        values = builder.load(builder.bitcast(builder.gep(data, [args[1]]), block.as_pointer()), align=1)
        return builder.bitcast(builder.icmp_unsigned("!=", values, ir.Constant(block, None)), ir.IntType(64))
    return types.uint64(a, start), codegen


@njit(cache=True)
def _padded(n):
    """Room for ``n`` bytes and one more 64-byte block (:func:`_nonzero_bits`), a multiple of 64."""
    return (n + 63) // 64 * 64 + 64


@njit(cache=True)
def _perturb_buffers(threads, n, words_per_array):
    """Scratch space for :func:`_perturb_arrays` on arrays of ``n`` cells holding ``words_per_array``
    words, one row for each of ``threads`` threads: the faulty-cell and stuck-value bitmaps of the
    array (one bit per cell), its faulty cells in stream order, and per word its faulty bits,
    their stuck values and the bits that its faults change."""
    cell_bytes, word_bytes = _padded((n + 7) // 8), _padded(words_per_array)
    return (np.zeros((threads, cell_bytes), dtype=np.uint8), np.zeros((threads, cell_bytes), dtype=np.uint8),
            np.empty((threads, n), dtype=np.uint64), np.zeros((threads, word_bytes), dtype=np.uint8),
            np.zeros((threads, word_bytes), dtype=np.uint8), np.zeros((threads, word_bytes), dtype=np.uint8))


@njit(cache=True)
def _perturb_rows(buffers):
    """The rows of :func:`_perturb_buffers` that belong to the calling thread."""
    i = get_thread_id()
    return (buffers[0][i], buffers[1][i], buffers[2][i], buffers[3][i], buffers[4][i], buffers[5][i])


@njit(cache=True)
def _bits_set(a, lo, hi):
    """The number of bits set in ``a[lo:hi]`` (uint8, ``a.size`` a multiple of 8), 64 at a time."""
    i, hi = np.uint64(lo), np.uint64(hi)
    total = 0
    while i < hi and i % 8:
        total += _popcount(a[i])
        i += _ONE
    words = a.view(np.uint64)
    for j in range(i >> np.uint64(3), hi >> np.uint64(3)):
        total += _popcount(words[j])
    i = max(i, hi & ~np.uint64(7))
    while i < hi:
        total += _popcount(a[i])
        i += _ONE
    return total


@njit(cache=True)
def _changed_bits(faults, stuck, diff, lo, hi, q, mask, xor, flip):
    """``diff[w]``: the bits of word w's code that its faults change, for w in ``lo .. hi - 1``
    (arguments as :func:`_apply_words`'s): a loop that the compiler vectorizes."""
    invert = np.uint8(0xFF) if flip else np.uint8(0)   # a faulty bit takes ~code (flip) or its stuck value
    keep = ~invert
    for w in range(np.uint64(lo), np.uint64(hi)):
        code = (np.uint8(q[w]) & mask) ^ xor
        diff[w] = faults[w] & (code ^ ((~code & invert) | (stuck[w] & keep)))


@njit(cache=True)
def _apply_words(faults, stuck, diff, lo, hi, q, code_mask, code_xor, flip, index, value, clean, m, index_base):
    """Apply the faults of words ``lo .. hi - 1`` of an array (one tensor's; ``q`` the array's
    integers, ``faults``/``stuck`` per word its faulty bits and their stuck values) to their
    codes: the changed bits of each word to ``diff``; for each word whose code changes, in
    increasing order, from entry ``m`` on (as many as fit), ``index_base`` plus its index, the
    integer its new code reads as and its clean integer. Returns (entries written, as ``m``
    counts, faulty bits, flipped bits).

    One pass over every word in SIMD (a word not faulty changes nothing), then, 64 words at a
    time, the changed ones: no work per faulty cell, no data-dependent branch per word."""
    mask, xor = np.uint8(code_mask), np.uint8(code_xor)
    half = np.int64(code_mask + 1) >> 1
    _changed_bits(faults, stuck, diff, lo, hi, q, mask, xor, flip)
    for base in range(lo - lo % 64, hi, 64):
        changed = _nonzero_bits(diff, base)
        if base < lo:
            changed &= ~((_ONE << np.uint64(lo - base)) - _ONE)
        if hi - base < 64:
            changed &= (_ONE << np.uint64(hi - base)) - _ONE
        while changed != 0:
            w = np.uint64(base) + np.uint64(trailing_zeros(changed))
            changed &= changed - _ONE
            if m < index.size:
                read = np.int64((np.uint8(q[w]) & mask) ^ diff[w])   # the code XOR xor, read back
                index[np.uint64(m)] = index_base + np.int64(w)
                value[np.uint64(m)] = read - ((read & half) << 1)
                clean[np.uint64(m)] = q[w]
            m += 1
    return m, _bits_set(faults, lo, hi), _bits_set(diff, lo, hi)


@njit(cache=True)
def _perturb_arrays(seed, first, stop, rows, cols, bits, max_hazard, q, offsets, flip, code_xor,
                    buffers, index, value, clean, counts):
    """The faults of arrays ``first .. stop - 1`` applied to the codes of ``q`` (see
    :func:`perturb_chip`): writes as many changed weights as fit to ``index``/``value``/``clean``,
    adds to ``counts``; returns (changed weights, faulty cells).

    Per array: draw its faults into bitmaps (:func:`_array_faults`); gather them per word (with
    8-bit words and a multiple of 8 columns the cell bitmaps are the words' masks already: byte w
    holds word w's bits); then apply them to each tensor's words in increasing order
    (:func:`_apply_words`), so the output is in stream order without sorting the cells.
    """
    taken, stuck, drawn, fault_mask, stuck_mask, diff = buffers
    cells_per_array, per_row, table = rows * cols, cols // bits, _column_table(cols, bits)
    inv_cols = 1.0 / cols
    words_per_array = rows * per_row
    byte_words = bits == 8 and cols % 8 == 0
    if byte_words:
        fault_mask, stuck_mask = taken, stuck
    no_cells, no_hazard = np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.float64)
    code_mask = (1 << bits) - 1
    t = min(np.searchsorted(offsets, np.int64(first) * words_per_array, side="right") - 1,
            offsets.size - 2)
    faulty = 0
    m = 0
    for array in range(first, stop):
        k = _array_faults(seed, array, cells_per_array, max_hazard, taken, stuck,
                          no_cells if byte_words else drawn, no_hazard)
        faulty += k
        if not byte_words:
            for i in range(k):
                pos = drawn[i]
                w, b = _word_in_array(np.int64(pos), cols, inv_cols, per_row, table)
                if w < 0:  # a spare column
                    continue
                value_bit = np.uint8((stuck[pos >> np.uint64(3)] >> (pos & np.uint64(7))) & _ONE)
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
            m, faulty_bits, flipped = _apply_words(fault_mask, stuck_mask, diff, lo, hi, array_q, code_mask,
                                                   code_xor, flip, index, value, clean, m, first_word - offsets[t])
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
def _perturb_serial(seed, n_arrays, rows, cols, bits, max_hazard, q, offsets, flip, code_xor, buffers):
    """:func:`perturb_chip` on one thread: all arrays as one chunk, written straight to the output
    (sized for the expected number of faulty cells plus 6 sigma, and run again, larger, in the
    rare case that is too small)."""
    index, value, clean = buffers[0], buffers[1], buffers[2]
    scratch = _perturb_rows(_perturb_buffers(1, rows * cols, rows * (cols // bits)))
    counts = np.zeros((offsets.size - 1, 3), dtype=np.int64)
    size = _slot_size(n_arrays * rows * cols, max_hazard)
    while True:
        if index.size < size:
            index = np.empty(size, dtype=np.int64)
            value = np.empty(size, dtype=np.int8)
            clean = np.empty(size, dtype=np.int8)
        counts[:] = 0
        m, faulty = _perturb_arrays(seed, 0, n_arrays, rows, cols, bits, max_hazard, q, offsets, flip,
                                    code_xor, scratch, index, value, clean, counts)
        if m <= index.size:
            return (index, value, clean, buffers[3], buffers[4], buffers[5]), m, counts, faulty
        size = m


@njit(cache=True, parallel=True)
def perturb_chip(seed, n_arrays, rows, cols, bits, max_hazard, q, offsets, flip, code_xor, buffers,
                 threads, slot):
    """One chip's faults applied to the b-bit codes of the integer weights ``q``: their
    two's-complement codes XOR ``code_xor`` (see :mod:`sramsim.storage`)
    (one stream for all tensors; tensor t is ``q[offsets[t]:offsets[t+1]]``), computed by (at most)
    ``threads``, numba's current thread count (see :func:`parallel`), with slots of ``slot``
    weights (0: the expected number of faulty cells of a chunk plus 6 sigma, enough but for rare
    chunks, as a weight changes only where a cell is faulty). One thread with the default slots
    runs the serial kernel, all arrays as one chunk, into the output itself (the same results).

    Stuck-at: a faulty cell's bit becomes its stuck value; flip (``flip=True``): the bit inverts.
    Writes, for each weight whose code changes, in stream order, its index within its tensor,
    the integer its new code reads as and its clean integer to the first three ``buffers`` (int64, int8, int8; the last
    three are scratch of the same types) and returns (buffers, grown where too small, number
    written, counts, faulty cells of all arrays), where ``counts[t]`` is (faulty cells, flipped
    bits, changed weights) of tensor t.
    """
    if threads == 1 and slot == 0:
        return _perturb_serial(seed, n_arrays, rows, cols, bits, max_hazard, q, offsets, flip, code_xor, buffers)
    index, value, clean, s_index, s_value, s_clean = buffers
    n_tensors = offsets.size - 1
    cells_per_array = rows * cols
    n_chunks = (n_arrays + ARRAYS_PER_CHUNK - 1) // ARRAYS_PER_CHUNK
    slot = slot if slot > 0 else _slot_size(ARRAYS_PER_CHUNK * cells_per_array, max_hazard)
    if s_index.size < n_chunks * slot:
        s_index = np.empty(n_chunks * slot, dtype=np.int64)
        s_value = np.empty(n_chunks * slot, dtype=np.int8)
        s_clean = np.empty(n_chunks * slot, dtype=np.int8)
    changed = np.zeros(n_chunks, dtype=np.int64)
    faulty = np.zeros(n_chunks, dtype=np.int64)
    scratch = _perturb_buffers(threads, cells_per_array, rows * (cols // bits))
    thread_counts = np.zeros((threads, n_tensors, 3), dtype=np.int64)
    for c in prange(n_chunks):
        first, s = c * ARRAYS_PER_CHUNK, c * slot
        changed[c], faulty[c] = _perturb_arrays(
            seed, first, min(first + ARRAYS_PER_CHUNK, n_arrays), rows, cols, bits, max_hazard,
            q, offsets, flip, code_xor, _perturb_rows(scratch), s_index[s:s + slot], s_value[s:s + slot],
            s_clean[s:s + slot], thread_counts[get_thread_id()])
    starts = _starts(changed)
    total = starts[-1]
    if index.size < total:
        index = np.empty(total, dtype=np.int64)
        value = np.empty(total, dtype=np.int8)
        clean = np.empty(total, dtype=np.int8)
    for c in prange(n_chunks):
        a, b = starts[c], starts[c + 1]
        if changed[c] <= slot:
            _unslot((index, value, clean), (s_index, s_value, s_clean), a, b, c * slot)
        else:
            first = c * ARRAYS_PER_CHUNK
            _perturb_arrays(seed, first, min(first + ARRAYS_PER_CHUNK, n_arrays), rows, cols, bits,
                            max_hazard, q, offsets, flip, code_xor, _perturb_rows(scratch), index[a:b], value[a:b],
                            clean[a:b], np.zeros((n_tensors, 3), np.int64))
    counts = np.zeros((n_tensors, 3), dtype=np.int64)
    for i in range(thread_counts.shape[0]):
        counts += thread_counts[i]
    return (index, value, clean, s_index, s_value, s_clean), total, counts, faulty.sum()
