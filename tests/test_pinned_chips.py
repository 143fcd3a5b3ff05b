"""Chips' faults pinned to the values of the kernels as first released (computed at commit
ea4c440): any change to the kernels must leave every chip's faulty cells, stuck values, hazards,
flipped bits and deployed weights bit for bit the same, for every thread count.

The models' weights are exact binary fractions built from integers, so the pins do not depend on
torch's random number generator or initialization.
"""
import hashlib

import numba
import numpy as np
import pytest
import torch
from torch import nn

from sramsim import Chip, Deployment, MemoryConfig
from sramsim.array import ArrayGeometry

THREADS = sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)})


def _digest(*arrays: np.ndarray) -> str:
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()[:16]


def _model() -> nn.Module:
    """226k weights in four tensors, each weight (i * 2654435761 mod 2**16) / 2**16 - 1/2."""
    model = nn.Sequential(nn.Conv2d(16, 24, 3), nn.Flatten(), nn.Linear(300, 400), nn.Linear(400, 250),
                          nn.Linear(250, 10))
    with torch.no_grad():
        for param in model.parameters():
            i = np.arange(param.numel(), dtype=np.int64)
            values = ((i * 2654435761) % 2**16) / 2**16 - 0.5
            param.copy_(torch.from_numpy(values.astype(np.float32)).view(param.shape))
    return model


# (memory config, geometry, at() keywords): (faulty weight cells, flipped bits, changed weights, digest
# of the stored weights as deployed)
DEPLOYMENTS = [
    (dict(bits=8), ArrayGeometry(), dict(voltage=0.834, chip=3),
     (18093, 8952, 8802, "5d42bffa2ef7ca36")),
    (dict(bits=8, fault_model="flip"), ArrayGeometry(), dict(ber=0.001, chip=2**40 + 7),
     (1771, 1771, 1760, "ed1572d21bce3a62")),
    (dict(bits=5, fault_model="flip", storage="robust"), ArrayGeometry(37, 47), dict(ber=0.03, chip=11),
     (33835, 33835, 31951, "a4b2b553ce64cf5d")),
    (dict(bits=3), ArrayGeometry(64, 64), dict(ber=0.05, chip=0), (33882, 16966, 16541, "3b07a7ec3f8349c1")),
    (dict(bits=4, storage="robust"), ArrayGeometry(), dict(ber=0.01, chip=5),
     (9029, 4551, 4525, "612b7564e5f525da")),
    (dict(bits=8, layout="neuralfuse-code"), ArrayGeometry(), dict(ber=0.01, chip=9),
     (18189, 9013, 8841, "61adfaeb227752ed")),
]


def _weights_digest(model: nn.Module) -> str:
    return _digest(*(p.detach().numpy() for name, p in model.named_parameters() if name.endswith("weight")))


def _deployed(memory: dict, geometry: ArrayGeometry, where: dict) -> tuple:
    """(faulty weight cells, flipped bits, changed weights, weights' digest) of ``at()`` alone, and
    the weights' digest of ``at()`` nested in ``quantized()``."""
    model = _model()
    deployment = Deployment(model, geometry=geometry, memory=MemoryConfig(**memory))
    with deployment.at(**where):
        alone = _weights_digest(model)
    with deployment.quantized(), deployment.at(**where):
        nested = _weights_digest(model)
    report = deployment.report(**where)
    return (report["faulty_weight_cells"], report["flipped_bits"], report["changed_weights"], alone), nested


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("memory, geometry, where, pinned", DEPLOYMENTS)
def test_deployed_chips_are_the_pinned_ones(numba_threads, threads, memory, geometry, where, pinned):
    numba_threads(threads)
    got, nested = _deployed(memory, geometry, where)
    assert got == pinned and nested == pinned[3]


# (seed, geometry, cells, start, BER): (faulty cells, digest of cells, stuck values and hazards)
MAPS = [
    (2**40 + 3, ArrayGeometry(), 2**20, 12345, 0.01, (10481, "0dd03bd91cb126ef")),
    (9, ArrayGeometry(37, 47), 50000, 777, 0.2, (9997, "baba63efb0f469bb")),
]


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("seed, geometry, n_cells, start, ber, pinned", MAPS)
def test_fault_maps_are_the_pinned_ones(numba_threads, threads, seed, geometry, n_cells, start, ber, pinned):
    numba_threads(threads)
    fault_map = Chip(seed, geometry=geometry).fault_map(n_cells, ber=ber, start=start)
    assert (len(fault_map), _digest(fault_map.cells, fault_map.stuck, fault_map.hazard)) == pinned
