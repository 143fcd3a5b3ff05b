"""Fault layouts: which stored weight bits a chip's faulty cells corrupt (:data:`LAYOUTS`).

``"arrays"`` (the default; physical)
    The weights of all stored tensors, one after another, fill arrays of 512 × 64 cells (see
    :mod:`sramsim.array`). Every weight bit has a cell of its own, so faults are independent across
    weights and across layers. This is how a weight memory stores a model.

``"neuralfuse-code"`` (reproduces the NeuralFuse authors' code, written from its description)
    - Each chip has one map of :data:`MAP_ROWS` × :data:`MAP_COLS` = 8,192 × 128 cells, drawn like
      any array of a :class:`~sramsim.faults.Chip` (``Chip(seed, tech, MAP_GEOMETRY)``): every cell is
      faulty with probability BER, with the same stuck-at and flip semantics, nested across rates.
    - Every stored tensor (each layer's weights, flattened in row-major order) starts at row 0 of
      that map, so all layers read the same leading faults.
    - A 128-bit row holds 16 8-bit words, and each row's 16 words serve 16 consecutive groups of
      16 weights: weight ``i`` of a tensor reads map row ``(i // 256) mod 8192``, word
      ``slot = i mod 16``, i.e. columns ``8*slot .. 8*slot + 7``; bit ``j`` of its two's-complement
      code (bit 0 the least significant) is read from column ``8*slot + j`` (:func:`locate`). The
      fault pattern thus repeats every 16 weights within a 256-weight block, and the map wraps
      around every 2,097,152 weights.
    - A faulty cell acts on every weight bit that reads it: stuck-at sets the bit to the cell's
      stuck value, flip inverts it. Only 8-bit weights are defined.

    >>> rows, columns = locate(np.array([0, 17, 255, 256, 8192 * 256 + 5]))
    >>> rows.tolist(), columns.tolist()
    ([0, 0, 0, 1, 0], [0, 8, 120, 0, 40])
"""
from __future__ import annotations

import numpy as np

from sramsim.array import ArrayGeometry
from sramsim.faults import Chip, FaultMap

LAYOUTS = ("arrays", "neuralfuse-code")
DEFAULT_LAYOUT = "arrays"
LAYOUT_SEMANTICS = {
    "arrays": "weights of all layers laid one after another in 512x64-cell arrays, one cell per "
              "weight bit (physical; the toolkit's default)",
    "neuralfuse-code": "one 8192x128-cell map per chip; every layer starts at row 0; weight i reads "
                       "row (i // 256) mod 8192, bits 8*(i mod 16) .. +7, so faults repeat every 16 "
                       "weights and all layers share them (the NeuralFuse authors' code)",
}
MAP_ROWS, MAP_COLS = 8192, 128
MAP_GEOMETRY = ArrayGeometry(MAP_ROWS, MAP_COLS)
WORD_BITS = 8
WORDS_PER_ROW = MAP_COLS // WORD_BITS            # 16 words in a row ...
REPEATS = 16                                     # ... each read by 16 weights of a block
WEIGHTS_PER_ROW = WORDS_PER_ROW * REPEATS        # 256 weights read one row
WEIGHTS_PER_MAP = MAP_ROWS * WEIGHTS_PER_ROW     # after 2**21 weights the map wraps around
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


def check_layout(name: str, bits: int = 8) -> str:
    """Return ``name`` if it is one of :data:`LAYOUTS` usable with ``bits``-bit weights, else raise
    a ValueError naming it."""
    if name not in LAYOUTS:
        raise ValueError(f"unknown layout {name!r}: use one of {', '.join(LAYOUTS)}")
    if name == "neuralfuse-code" and bits != WORD_BITS:
        raise ValueError(f"layout 'neuralfuse-code' stores 8-bit weights only (16 per 128-bit row); "
                         f"got bits={bits}")
    return name


def locate(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(map row, first column) that weight ``index`` of any tensor reads under ``"neuralfuse-code"``;
    bit j of the weight is in column ``first column + j``."""
    index = np.asarray(index, dtype=np.int64)
    return (index // WEIGHTS_PER_ROW) % MAP_ROWS, (index % WORDS_PER_ROW) * WORD_BITS


def code_fault_map(seed: int, tech: str, ber: float) -> FaultMap:
    """The 8,192 × 128 map of chip ``seed`` of ``tech`` at bit-error rate ``ber``."""
    return Chip(seed, tech, MAP_GEOMETRY).fault_map(MAP_GEOMETRY.cells, ber=ber)


def apply_code_faults(fault_map: FaultMap, q: np.ndarray, offsets: np.ndarray,
                      flip: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``fault_map`` (cells of :data:`MAP_GEOMETRY`) applied under ``"neuralfuse-code"`` to the int8
    weights ``q``, tensor t being ``q[offsets[t]:offsets[t+1]]``.

    Returns (index, value, clean, counts): for every weight whose value changes, tensor by tensor
    in increasing index order, its flat index in its tensor, its value on the chip and its clean
    value (int8), and per tensor (faulty weight bits read, flipped bits, changed weights). Work is
    proportional to the number of weights that read a faulty cell.
    """
    word = fault_map.cells // WORD_BITS                     # cells are sorted, so words are too
    words, first = np.unique(word, return_index=True)
    bit = (fault_map.cells % WORD_BITS).astype(np.uint8)
    faulty = np.add.reduceat(np.left_shift(1, bit, dtype=np.uint8), first).astype(np.uint8)
    stuck = np.add.reduceat(np.left_shift(fault_map.stuck, bit), first).astype(np.uint8)
    row, slot = np.divmod(words, WORDS_PER_ROW)
    codes = q.view(np.uint8)
    found, counts = [], np.zeros((len(offsets) - 1, 3), dtype=np.int64)
    for t, (start, stop) in enumerate(zip(offsets[:-1], offsets[1:])):
        n = int(stop - start)
        index, masks, values = [np.empty(0, np.int64)], [np.empty(0, np.uint8)], [np.empty(0, np.uint8)]
        for base in range(0, n, WEIGHTS_PER_MAP):           # each pass over the whole map
            rows_read = -(-(n - base) // WEIGHTS_PER_ROW)
            k = int(np.searchsorted(row, rows_read))        # the faulty words of rows read
            i = (base + row[:k, None] * WEIGHTS_PER_ROW + slot[:k, None]
                 + WORDS_PER_ROW * np.arange(REPEATS)).ravel()
            keep = i < n
            index.append(i[keep])
            masks.append(np.repeat(faulty[:k], REPEATS)[keep])
            values.append(np.repeat(stuck[:k], REPEATS)[keep])
        index, mask, value = (np.concatenate(a) for a in (index, masks, values))
        clean = codes[start + index]
        new = clean ^ mask if flip else (clean & ~mask) | value
        changed = new != clean
        counts[t] = (_POPCOUNT[mask].sum(), _POPCOUNT[new ^ clean].sum(), changed.sum())
        order = np.flatnonzero(changed)[np.argsort(index[changed])]  # increasing, as the writes expect
        found.append((index[order], new[order].view(np.int8), clean[order].view(np.int8)))
    return tuple(np.concatenate([f[j] for f in found]) for j in range(3)) + (counts,)
