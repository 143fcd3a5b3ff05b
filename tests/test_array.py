"""Array geometry and the layout of b-bit weights in a memory of many arrays."""
import numpy as np
import pytest

from sramsim import _addressing
from sramsim.array import ArrayGeometry, MemoryLayout


def test_default_array_is_512_rows_of_64_bits():
    geometry = ArrayGeometry()
    assert (geometry.rows, geometry.cols, geometry.cells) == (512, 64, 32768)


def test_eight_int8_weights_per_row_and_tensors_follow_each_other():
    layout = MemoryLayout([10, 5], bits=8)
    assert layout.words_per_row == 8
    assert layout.locate(0, 7) == (0, 0, 56)
    assert layout.locate(0, 8) == (0, 1, 0)
    # tensor 1 starts right after tensor 0's ten weights, not at row 0
    assert layout.locate(1, 0) == (0, 1, 16)
    assert layout.n_arrays == 1


def test_weights_fill_one_array_then_the_next():
    layout = MemoryLayout([512 * 8 + 3], bits=8)
    assert layout.locate(0, 512 * 8 - 1) == (0, 511, 56)
    assert layout.locate(0, 512 * 8) == (1, 0, 0)
    assert layout.n_arrays == 2
    assert layout.n_cells == 2 * 32768


@pytest.mark.parametrize("bits, per_row", [(2, 32), (3, 21), (4, 16), (5, 12), (6, 10), (7, 9), (8, 8)])
def test_reduced_precision_packs_cols_over_bits_words_per_row(bits, per_row):
    layout = MemoryLayout([1000], bits=bits)
    assert layout.words_per_row == per_row
    assert layout.locate(0, per_row) == (0, 1, 0)
    assert layout.locate(0, per_row - 1) == (0, 0, (per_row - 1) * bits)


@pytest.mark.parametrize("bits", [3, 4, 5, 8])
@pytest.mark.parametrize("geometry", [ArrayGeometry(), ArrayGeometry(rows=7, cols=20)])
def test_cells_map_back_to_the_weight_bits_stored_in_them(bits, geometry):
    sizes = [37, 1, 500, 2048]
    layout = MemoryLayout(sizes, bits=bits, geometry=geometry)
    rng = np.random.default_rng(0)
    for tensor, size in enumerate(sizes):
        index = rng.integers(0, size, 20)
        array, row, column = layout.locate(tensor, index)
        bit = rng.integers(0, bits, 20)
        cells = array * geometry.cells + row * geometry.cols + column + bit
        words, found_bit = layout.words_of_cells(cells)
        np.testing.assert_array_equal(words, layout.offsets[tensor] + index)
        np.testing.assert_array_equal(found_bit, bit)
        found_tensor, element = layout.tensor_of_words(words)
        np.testing.assert_array_equal(found_tensor, tensor)
        np.testing.assert_array_equal(element, index)


@pytest.mark.parametrize("cols, hard_row", [(8, 1), (64, 2**25), (49, 26581645), (98, 257751),
                                             (103, 22052771), (65535, 65000)])
def test_the_row_of_a_cell_is_its_integer_quotient_up_to_the_largest_array(cols, hard_row):
    # the kernels find a cell's row by a product with 1/cols, then correct it: for cell
    # hard_row * cols the product alone rounds to just below hard_row
    rows = (2**32 - 1) // cols
    rng = np.random.default_rng(cols)
    starts = np.concatenate([[hard_row], rng.integers(1, rows, 500)]) * cols
    cells = np.concatenate([starts, starts - 1, [0, cols - 1, rows * cols - 1]])
    table = _addressing.column_table(cols, 8)
    for cell in cells:
        word, bit = _addressing.word_in_array(cell, cols, 1.0 / cols, cols // 8, table)
        row, col = divmod(int(cell), cols)
        expected = (-1, -1) if table[col, 0] < 0 else (row * (cols // 8) + col // 8, col % 8)
        assert (word, bit) == expected, (cell, cols)


def test_every_stored_bit_has_exactly_one_cell_and_spare_cells_hold_none():
    layout = MemoryLayout([30, 20], bits=5, geometry=ArrayGeometry(rows=4, cols=16))
    words, bit = layout.words_of_cells(np.arange(layout.n_cells))
    stored = words >= 0
    pairs = set(zip(words[stored].tolist(), bit[stored].tolist()))
    assert pairs == {(w, b) for w in range(50) for b in range(5)}
    assert stored.sum() == 50 * 5
    assert np.all(bit[~stored] == -1)
    assert np.all(words[np.arange(layout.n_cells) % 16 == 15] == -1)  # column 15 is spare with 5-bit words


def test_bad_geometry_and_layout_are_refused():
    with pytest.raises(ValueError, match="rows=0"):
        ArrayGeometry(rows=0)
    with pytest.raises(ValueError, match="too large"):
        ArrayGeometry(rows=2**20, cols=2**13)
    with pytest.raises(ValueError, match="6 columns cannot hold a 8-bit word"):
        MemoryLayout([4], bits=8, geometry=ArrayGeometry(rows=4, cols=6))
    with pytest.raises(ValueError, match="bits=9"):
        MemoryLayout([4], bits=9)
    with pytest.raises(IndexError, match="tensor 2"):
        MemoryLayout([4, 4]).locate(2, 0)
    with pytest.raises(IndexError, match="out of range"):
        MemoryLayout([4, 4]).locate(1, 4)
