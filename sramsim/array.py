"""Geometry of SRAM arrays and the layout of quantized weights in a memory made of many of them.

Cells are numbered flat across the whole memory: cell ``c`` lies in array ``c // (rows*cols)``,
row ``(c % (rows*cols)) // cols``, column ``c % cols`` (row-major inside each array).

Layout of b-bit weights (:class:`MemoryLayout`)
-----------------------------------------------
- The tensors are concatenated, one after another, into one stream of weights (tensor 0's
  elements in their flattened order, then tensor 1's, ...). No tensor starts at a fresh row: a
  tensor begins in the row (and the array) where the previous one ended.
- Each row holds ``cols // bits`` words (8 int8 weights per 64-bit row; 16 4-bit weights; 12 5-bit
  weights with columns 60..63 unused). Word ``j`` of a row occupies columns
  ``j*bits .. j*bits+bits-1``; bit ``i`` of the two's-complement code (bit 0 the least
  significant) is stored in column ``j*bits + i``.
- Rows fill array 0 from row 0 to row ``rows-1``, then array 1, and so on. Cells past the last
  weight of the last array and the spare columns hold no weight bit.

So word ``g`` of the stream (weight ``k`` of tensor ``t`` is word ``offsets[t] + k``) sits in array
``g // (rows * per_row)``, row ``(g // per_row) % rows``, columns from ``(g % per_row) * bits``.

    >>> layout = MemoryLayout([3 * 3 * 3 * 64, 10 * 512], bits=8)
    >>> layout.locate(1, 0)        # weight 0 of tensor 1 follows the 1,728 weights of tensor 0
    (0, 216, 0)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from characterization.validation import check_scalar
from sramsim.quant import check_bits

MAX_ARRAY_CELLS = 2**32


@dataclass(frozen=True)
class ArrayGeometry:
    """One SRAM array of ``rows`` × ``cols`` bit cells (512 × 64 by default, as in the paper)."""

    rows: int = 512
    cols: int = 64

    def __post_init__(self) -> None:
        for name in ("rows", "cols"):
            check_scalar(getattr(self, name), f"array {name}", int, min_val=1)
        if self.rows * self.cols > MAX_ARRAY_CELLS:
            raise ValueError(f"array of {self.rows}x{self.cols} cells is too large: at most 2**32 cells")

    @property
    def cells(self) -> int:
        """Number of bit cells in one array."""
        return self.rows * self.cols


class MemoryLayout:
    """Where each b-bit weight of a list of tensors is stored (see the module docstring).

    ``sizes`` are the element counts of the tensors, in storage order.
    """

    def __init__(self, sizes: Sequence[int], bits: int = 8, geometry: ArrayGeometry = ArrayGeometry()) -> None:
        self.bits = check_bits(bits)
        self.geometry = geometry
        if geometry.cols < bits:
            raise ValueError(f"array of {geometry.cols} columns cannot hold a {bits}-bit word")
        sizes = [int(n) for n in sizes]
        if any(n < 0 for n in sizes):
            raise ValueError(f"tensor sizes must be non-negative, got {sizes}")
        self.sizes = tuple(sizes)
        self.offsets = np.concatenate(([0], np.cumsum(sizes, dtype=np.int64)))
        """``offsets[t]`` is the stream index of tensor t's first weight; the last entry is the total."""

    @property
    def words_per_row(self) -> int:
        """Weights per row, ``cols // bits``."""
        return self.geometry.cols // self.bits

    @property
    def n_words(self) -> int:
        """Total number of weights stored."""
        return int(self.offsets[-1])

    @property
    def n_arrays(self) -> int:
        """Number of arrays the weights occupy (the last one possibly part-filled)."""
        words_per_array = self.words_per_row * self.geometry.rows
        return -(-self.n_words // words_per_array)

    @property
    def n_cells(self) -> int:
        """Cells of all the arrays used, ``n_arrays * rows * cols``."""
        return self.n_arrays * self.geometry.cells

    def locate(self, tensor: int, index: int | np.ndarray) -> tuple:
        """(array, row, column) of weight ``index`` (flattened) of tensor ``tensor``.

        ``column`` is where bit 0 of the word is stored; bit i is in ``column + i``. ``index`` may
        be an int or an integer array (then three arrays are returned).
        """
        if not 0 <= tensor < len(self.sizes):
            raise IndexError(f"tensor {tensor} does not exist: the layout has {len(self.sizes)} tensors")
        k = np.asarray(index, dtype=np.int64)
        if np.any((k < 0) | (k >= self.sizes[tensor])):
            raise IndexError(f"weight index out of range for tensor {tensor} of {self.sizes[tensor]} weights")
        global_row, slot = np.divmod(self.offsets[tensor] + k, self.words_per_row)
        array, row = np.divmod(global_row, self.geometry.rows)
        column = slot * self.bits
        if np.ndim(index) == 0:
            return int(array), int(row), int(column)
        return array, row, column

    def words_of_cells(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For flat cell indices, the stream index of the weight each holds and which of its bits;
        both are -1 for a cell that holds no weight bit."""
        cells = np.ascontiguousarray(cells, dtype=np.int64)
        from sramsim import _addressing  # numba loads with the first kernel call, not with this module

        g = self.geometry
        return _addressing.cells_to_words(cells, g.rows, g.cols, self.bits, self.n_words)

    def tensor_of_words(self, words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tensor index, flattened element index) of stream indices ``words`` (all valid)."""
        tensor = np.searchsorted(self.offsets, words, side="right") - 1
        return tensor, words - self.offsets[tensor]

    def __repr__(self) -> str:
        g = self.geometry
        return (f"MemoryLayout({len(self.sizes)} tensors, {self.n_words} weights, bits={self.bits}, "
                f"{self.n_arrays} arrays of {g.rows}x{g.cols})")
