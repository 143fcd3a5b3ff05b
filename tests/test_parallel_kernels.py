"""The parallel numba kernels give the serial kernels' output for any thread count and slot size."""
import numba
import numpy as np
import pytest
import torch
from torch import nn

from sramsim import Chip, Deployment, MemoryConfig, _fault_cells, _perturb, _stores
from sramsim._parallel import ARRAYS_PER_CHUNK
from sramsim.array import ArrayGeometry
from sramsim.faults import max_hazard

GEOMETRY = ArrayGeometry(64, 64)
THREADS = sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)})


def serial_fault_cells(seed, first, stop, n, hazard, lo, hi):
    """The serial kernel: one chunk made of all the arrays, with room for every cell."""
    size = (stop - first) * n
    cells, stuck, hz = np.empty(size, np.int64), np.empty(size, np.uint8), np.empty(size, np.float64)
    scratch = [row[0] for row in _fault_cells._map_buffers(1, n)]
    k = _fault_cells._chunk_cells(np.uint64(seed), first, stop, n, hazard, lo, hi, tuple(scratch), cells, stuck, hz)
    return cells[:k], stuck[:k], hz[:k]


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("slot", [0, 1, 40])  # 1 and 40: most or some chunks overflow their slots
def test_fault_cells_equal_the_serial_kernel(numba_threads, threads, slot):
    numba_threads(threads)
    n, hazard = GEOMETRY.cells, max_hazard(0.02)
    lo, hi = 3 * n + 17, 61 * n - 5
    expected = serial_fault_cells(2**41 + 9, 3, 61, n, hazard, lo, hi)
    got = _fault_cells.fault_cells(np.uint64(2**41 + 9), 3, 61, n, hazard, lo, hi, threads, slot)
    assert expected[0].size > 1000
    for a, b in zip(expected, got):
        np.testing.assert_array_equal(a, b)


def test_fault_maps_are_the_same_with_one_and_two_threads(numba_threads):
    maps = []
    for threads in THREADS:
        numba_threads(threads)
        maps.append(Chip(seed=77, geometry=GEOMETRY).fault_map(100 * GEOMETRY.cells + 3, ber=0.01, start=999))
    for m in maps[1:]:
        np.testing.assert_array_equal(m.cells, maps[0].cells)
        np.testing.assert_array_equal(m.stuck, maps[0].stuck)
        np.testing.assert_array_equal(m.hazard, maps[0].hazard)


def _model() -> nn.Module:
    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(3, 16, 3), nn.Linear(16, 300), nn.Linear(300, 500), nn.Linear(500, 7))


def _faults_and_arrays(deployment: Deployment, seed: int, ber: float) -> tuple:
    """The kernels' records of a deployment's chip ``seed`` at ``ber``: (ChipFaults, WordArrays)."""
    g, bits = deployment.geometry, deployment.bits
    return (_perturb.ChipFaults(np.uint64(seed), max_hazard(ber), deployment.fault_model == "flip",
                                deployment.storage.code_xor(bits)),
            _perturb.WordArrays(g.rows, g.cols, bits))


def serial_perturb(deployment: Deployment, seed: int, ber: float):
    """The serial kernel on all arrays at once: (index, value, clean, counts, faulty cells)."""
    layout, g = deployment.layout, deployment.geometry
    size = layout.n_arrays * g.cells
    out = np.empty(size, np.int64), np.empty(size, np.int8), np.empty(size, np.int8)
    counts = np.zeros((len(layout.sizes), 3), np.int64)
    faults, arrays = _faults_and_arrays(deployment, seed, ber)
    scratch = tuple(row[0] for row in _perturb._perturb_buffers(1, arrays))
    m, faulty = _perturb._perturb_arrays(faults, arrays, 0, layout.n_arrays, deployment._q, layout.offsets,
                                         scratch, out, counts)
    return (*(a[:m] for a in out), counts, faulty)


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("slot", [0, 2])
@pytest.mark.parametrize("fault_model, bits, storage", [("stuck-at", 8, "symmetric"), ("flip", 5, "robust")])
def test_perturb_chip_equals_the_serial_kernel(numba_threads, threads, slot, fault_model, bits, storage):
    numba_threads(threads)
    deployment = Deployment(_model(), geometry=GEOMETRY,
                            memory=MemoryConfig(bits=bits, fault_model=fault_model, storage=storage))
    index, value, clean, counts, faulty = serial_perturb(deployment, 5, 0.03)
    layout = deployment.layout
    buffers = tuple(np.empty(0, t) for t in (np.int64, np.int8, np.int8) * 2)
    buffers, n, got_counts, got_faulty = _perturb.perturb_chip(
        *_faults_and_arrays(deployment, 5, 0.03), layout.n_arrays, deployment._q, layout.offsets, buffers,
        threads, slot)
    assert layout.n_arrays > 2 * ARRAYS_PER_CHUNK and n > 500
    assert n == index.size and got_faulty == faulty
    np.testing.assert_array_equal(got_counts, counts)
    for a, b in zip((index, value, clean), buffers[:3]):
        np.testing.assert_array_equal(b[:n], a)


def test_deployed_weights_are_the_same_with_one_and_two_threads(numba_threads):
    model = _model()
    deployment = Deployment(model, geometry=GEOMETRY)
    weights = []
    for threads in THREADS:
        numba_threads(threads)
        with deployment.at(ber=0.02, chip=11):
            weights.append([p.detach().clone() for p in model.parameters()])
    for other in weights[1:]:
        assert all(torch.equal(a, b) for a, b in zip(weights[0], other))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_streaming_stores_write_what_plain_stores_write(dtype):
    """The streamed writes of whole tensors equal NumPy's, bit for bit, at any alignment and size
    (a head before the first 32-byte boundary, aligned blocks, a tail), and leave the rest alone."""
    rng = np.random.default_rng(0)
    q = rng.integers(-128, 128, 300, dtype=np.int8)
    scale = float(dtype(0.0123))
    for start, shift in ((start, shift) for start in range(9) for shift in (0.0, 0.3 / 7)):
        for size in (0, 1, 7, 8, 9, 100, 300 - start):
            out = np.full(310, -1.0, dtype)
            _stores.stream_scaled(out[start:start + size], q[:size], scale, shift)
            expected = np.full(310, -1.0, dtype)
            expected[start:start + size] = (q[:size] * scale + shift).astype(dtype)
            assert np.array_equal(out.view(np.uint8), expected.view(np.uint8)), (start, size)
