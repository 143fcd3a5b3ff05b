"""The perturbation kernels' bit operations (sramsim._bits) equal the obvious NumPy ones."""
import numpy as np
from numba import njit

from sramsim import _bits


@njit
def _nonzero_masks(a, starts):
    out = np.empty(starts.size, dtype=np.uint64)
    for i in range(starts.size):
        out[i] = _bits.nonzero_bits(a, starts[i])
    return out


def test_nonzero_bits_mark_the_nonzero_bytes_of_64_at_any_offset():
    rng = np.random.default_rng(0)
    a = (rng.random(256) < 0.3).astype(np.uint8) * rng.integers(1, 256, 256).astype(np.uint8)
    starts = np.arange(0, 256 - 64 + 1)
    got = _nonzero_masks(a, starts)
    for start, mask in zip(starts, got):
        expected = sum(1 << j for j in range(64) if a[start + j])
        assert int(mask) == expected, start


def test_bits_set_counts_the_bits_of_any_byte_range():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, 96, dtype=np.uint8)
    ones = np.unpackbits(a).reshape(-1, 8).sum(axis=1)
    for lo in range(0, 20):
        for hi in (lo, lo + 1, lo + 7, lo + 8, lo + 9, 61, 96):
            if hi >= lo:
                assert _bits.bits_set(a, lo, hi) == ones[lo:hi].sum(), (lo, hi)
