"""Where each cell of an array sits among the stored words: the kernels behind
:meth:`sramsim.array.MemoryLayout.words_of_cells` (the packing is documented in :mod:`sramsim.array`)."""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def column_table(cols, bits):
    """Per column of a row: the slot of the word it holds and which bit of it, or -1 (a spare
    column), as a (cols, 2) table, under :class:`sramsim.array.MemoryLayout`'s packing."""
    per_row = cols // bits
    table = np.full((cols, 2), -1, dtype=np.int64)
    for col in range(per_row * bits):
        table[col, 0], table[col, 1] = col // bits, col % bits
    return table


@njit(cache=True)
def word_in_array(cell, cols, inv_cols, per_row, table):
    """(word within its array, bit) held by cell ``cell`` (below 2**32) of an array, or (-1, -1)
    for a spare column (``table`` from :func:`column_table`, ``inv_cols`` = 1 / cols). The row is
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
    word, bit = word_in_array(cell, cols, inv_cols, per_row, table)
    if word < 0:
        return -1, -1
    return np.int64(array) * rows * per_row + word, bit


@njit(cache=True, parallel=True)
def cells_to_words(cells, rows, cols, bits, n_words):
    """(word, bit) held by each flat cell index; both -1 for a cell that holds no weight bit
    (spare columns, or past the last word)."""
    per_array, per_row, table = rows * cols, cols // bits, column_table(cols, bits)
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
