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

from dataclasses import dataclass

import numpy as np

from sramsim.array import ArrayGeometry, MemoryLayout
from sramsim.faults import Chip, FaultMap

MAP_ROWS, MAP_COLS = 8192, 128
MAP_GEOMETRY = ArrayGeometry(MAP_ROWS, MAP_COLS)
WORD_BITS = 8
WORDS_PER_ROW = MAP_COLS // WORD_BITS            # 16 words in a row ...
REPEATS = 16                                     # ... each read by 16 weights of a block
WEIGHTS_PER_ROW = WORDS_PER_ROW * REPEATS        # 256 weights read one row
WEIGHTS_PER_MAP = MAP_ROWS * WEIGHTS_PER_ROW     # after 2**21 weights the map wraps around
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


@dataclass(frozen=True)
class Layout:
    """A registered fault layout (:func:`get`): what a :class:`~sramsim.Deployment` asks of it.

    ``own_geometry`` is the one map every chip has under this layout (None: the deployment's
    arrays, as many as the weights fill); ``word_bits`` the only weight width it defines (None:
    any); ``shared_map``: every tensor reads the same cells from the start of the map."""

    name: str
    semantics: str
    own_geometry: ArrayGeometry | None = None
    word_bits: int | None = None
    shared_map: bool = False

    def check_bits(self, bits: int) -> int:
        """Return ``bits`` if this layout stores ``bits``-bit weights, else raise a ValueError."""
        if self.word_bits is not None and bits != self.word_bits:
            raise ValueError(f"layout {self.name!r} stores {self.word_bits}-bit weights only; got bits={bits}")
        return bits

    def geometry(self, arrays: ArrayGeometry) -> ArrayGeometry:
        """The geometry of the chip's cells under this layout, given the deployment's ``arrays``;
        a layout with a map of its own refuses any geometry but the default one."""
        if self.own_geometry is None:
            return arrays
        if arrays != ArrayGeometry():
            raise ValueError(f"layout {self.name!r} uses its own {self.own_geometry.rows}x"
                             f"{self.own_geometry.cols} map: do not give a geometry (got {arrays})")
        return self.own_geometry

    def n_cells(self, layout: MemoryLayout) -> int:
        """The cells of a chip that the weights of ``layout`` use (spare cells included)."""
        return layout.n_cells if self.own_geometry is None else self.own_geometry.cells

    def n_arrays(self, layout: MemoryLayout) -> int:
        """The arrays (or maps) of a chip that the weights of ``layout`` use."""
        return layout.n_arrays if self.own_geometry is None else 1

    def check_map(self, fault_map: FaultMap, layout: MemoryLayout, arrays: ArrayGeometry) -> None:
        """Refuse a map that does not give this layout's cells for the weights of ``layout`` in
        the deployment's ``arrays``: a ValueError saying what the map has and what is needed."""
        needed, g = self.geometry(arrays), fault_map.geometry
        if g != needed:
            raise ValueError(f"fault map of {g.rows}x{g.cols}-cell arrays does not fit layout "
                             f"{self.name!r} here: it needs {needed.rows}x{needed.cols}-cell arrays")
        cells, stop = self.n_cells(layout), fault_map.start + fault_map.n_cells
        if fault_map.start != 0 or stop < cells:
            raise ValueError(f"fault map covers cells {fault_map.start}..{stop}: the stored weights "
                             f"need cells 0..{cells} ({self.n_arrays(layout)} arrays of "
                             f"{needed.rows}x{needed.cols}) under layout {self.name!r}")


_REGISTRY: dict[str, Layout] = {}


def register(layout: Layout) -> Layout:
    """Add ``layout`` to the registry under its name; return it."""
    if layout.name in _REGISTRY:
        raise ValueError(f"layout {layout.name!r} is already registered")
    _REGISTRY[layout.name] = layout
    return layout


def get(name: str) -> Layout:
    """The registered layout ``name``, else a ValueError listing the known ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown layout {name!r}: use one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def check_layout(name: str, bits: int = 8) -> str:
    """Return ``name`` if it is one of :data:`LAYOUTS` usable with ``bits``-bit weights, else raise
    a ValueError naming it."""
    get(name).check_bits(bits)
    return name


ARRAYS = register(Layout(
    "arrays", "weights of all layers laid one after another in 512x64-cell arrays, one cell per "
              "weight bit (physical; the toolkit's default)"))
NEURALFUSE_CODE = register(Layout(
    "neuralfuse-code", "one 8192x128-cell map per chip; every layer starts at row 0; weight i reads "
                       "row (i // 256) mod 8192, bits 8*(i mod 16) .. +7, so faults repeat every 16 "
                       "weights and all layers share them (the NeuralFuse authors' code)",
    own_geometry=MAP_GEOMETRY, word_bits=WORD_BITS, shared_map=True))
#: The registered layouts' names, the default first.
LAYOUTS = tuple(_REGISTRY)
DEFAULT_LAYOUT = ARRAYS.name
LAYOUT_SEMANTICS = {name: layout.semantics for name, layout in _REGISTRY.items()}


def locate(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(map row, first column) that weight ``index`` of any tensor reads under ``"neuralfuse-code"``;
    bit j of the weight is in column ``first column + j``."""
    index = np.asarray(index, dtype=np.int64)
    return (index // WEIGHTS_PER_ROW) % MAP_ROWS, (index % WORDS_PER_ROW) * WORD_BITS


def code_fault_map(seed: int, tech: str, ber: float) -> FaultMap:
    """The 8,192 × 128 map of chip ``seed`` of ``tech`` at bit-error rate ``ber``."""
    return Chip(seed, tech, MAP_GEOMETRY).fault_map(MAP_GEOMETRY.cells, ber=ber)


def apply_code_faults(fault_map: FaultMap, q: np.ndarray, offsets: np.ndarray,
                      flip: bool, code_xor: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``fault_map`` (cells of :data:`MAP_GEOMETRY`) applied under ``"neuralfuse-code"`` to the int8
    weights ``q``, tensor t being ``q[offsets[t]:offsets[t+1]]``, stored as their two's-complement
    codes XOR ``code_xor`` (see :mod:`sramsim.storage`).

    Returns (index, value, clean, counts): for every weight whose code changes, tensor by tensor
    in increasing index order, its flat index in its tensor, the integer it reads and its clean
    integer (int8), and per tensor (faulty weight bits read, flipped bits, changed weights). Work is
    proportional to the number of weights that read a faulty cell.
    """
    words, faulty, stuck = _word_masks(fault_map.cells // WORD_BITS,   # cells are sorted, so words are too
                                       fault_map.cells % WORD_BITS, fault_map.stuck)
    row, slot = np.divmod(words, WORDS_PER_ROW)
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
        clean = q[start + index]
        read, changed, flipped = read_faulty_codes(clean, mask, value, flip, WORD_BITS, code_xor)
        counts[t] = (_POPCOUNT[mask].sum(), flipped.sum(), changed.sum())
        order = np.flatnonzero(changed)[np.argsort(index[changed])]  # increasing, as the writes expect
        found.append((index[order], read[order], clean[order]))
    return tuple(np.concatenate([f[j] for f in found]) for j in range(3)) + (counts,)


def apply_array_faults(fault_map: FaultMap, q: np.ndarray, offsets: np.ndarray, bits: int,
                       flip: bool, code_xor: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``fault_map``'s cells applied under ``"arrays"`` (:class:`sramsim.array.MemoryLayout` of
    ``bits``-bit words in arrays of the map's geometry) to the int8 weights ``q``: what
    :func:`sramsim._perturb.perturb_chip` computes from the chip's seed, from a map instead (the
    same results for the chip's own map). Arguments and results as :func:`apply_code_faults`."""
    from sramsim import _addressing  # numba loads with the first kernel call, not with this module

    g = fault_map.geometry
    word, bit = _addressing.cells_to_words(fault_map.cells, g.rows, g.cols, bits, q.size)
    keep = word >= 0                                    # words follow the sorted cells' order
    words, mask, stuck = _word_masks(word[keep], bit[keep], fault_map.stuck[keep])
    clean = q[words]
    read, changed, flipped = read_faulty_codes(clean, mask, stuck, flip, bits, code_xor)
    tensor = np.searchsorted(offsets, words, side="right") - 1
    n_tensors = len(offsets) - 1
    counts = np.stack([np.bincount(tensor, weights, minlength=n_tensors)
                       for weights in (_POPCOUNT[mask], flipped, changed)], axis=1).astype(np.int64)
    return words[changed] - offsets[tensor[changed]], read[changed], clean[changed], counts


def _word_masks(word: np.ndarray, bit: np.ndarray, stuck: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per distinct word of the faulty cells (``word`` sorted, one entry per cell, ``bit`` its bit
    in the word, ``stuck`` its stuck value): the word, its faulty-bit mask and stuck-value mask."""
    words, first = np.unique(word, return_index=True)
    if words.size == 0:
        return words, np.empty(0, np.uint8), np.empty(0, np.uint8)
    bit = bit.astype(np.uint8)
    return (words, np.add.reduceat(np.left_shift(1, bit, dtype=np.uint8), first).astype(np.uint8),
            np.add.reduceat(np.left_shift(stuck, bit), first).astype(np.uint8))


def read_faulty_codes(clean: np.ndarray, mask: np.ndarray, stuck: np.ndarray, flip: bool, bits: int,
                      code_xor: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The integers that weights read on faulty cells: ``clean`` (int8) stored as b-bit codes
    (two's complement XOR ``code_xor``), bits ``mask`` of each faulty, stuck at ``stuck`` (or
    flipped). Returns (the integers read, int8; whether the code changed; flipped bits per weight)."""
    code = (clean.view(np.uint8) & np.uint8(2**bits - 1)) ^ np.uint8(code_xor)
    new = code ^ mask if flip else (code & ~mask) | (stuck & mask)
    read = (new ^ np.uint8(code_xor)).astype(np.int16)
    half = 2 ** (bits - 1)
    return (read - ((read & half) << 1)).astype(np.int8), new != code, _POPCOUNT[new ^ code]
