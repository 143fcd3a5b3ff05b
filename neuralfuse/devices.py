"""Where the work runs: the torch device (``--device auto|cpu|cuda[:N]``) and the CPU threads.

    device = resolve_device("auto")      # cuda when torch sees a GPU, else cpu
    set_threads(2)                       # torch, numba and OpenMP all get 2 threads

Data, models, generators and :class:`sramsim.Deployment` all live on the chosen device. Fault maps
are drawn on the CPU either way (numba, from the chip seed) and only the changed weights are
written to the device, so a chip's faults are the same on every device.
"""
from __future__ import annotations

import itertools
import os
import re

import torch

from characterization.validation import check_scalar

DEVICE_HELP = "Where to run: auto (CUDA when available, else CPU), cpu, cuda or cuda:N."
_SPEC = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """The torch device named by ``spec``: ``"auto"`` (or None), ``"cpu"``, ``"cuda"``, ``"cuda:N"``.

    ``auto`` is ``cuda`` when torch sees a CUDA device, else ``cpu``. An unknown name or a CUDA
    device this machine does not have raises a ValueError saying what is allowed.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = "auto" if spec is None else str(spec).strip().lower()
    match = _SPEC.match(text)
    if match is None or (match[2] is not None and match[1] != "cuda"):
        raise ValueError(f"device {spec!r} is not valid: use auto, cpu, cuda or cuda:N")
    kind, index = match[1], match[2]
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cpu":
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    wanted = 0 if index is None else int(index)
    if wanted >= count:
        have = "no CUDA device" if count == 0 else f"CUDA devices cuda:0 to cuda:{count - 1}"
        raise ValueError(f"device {spec!r} is not available: this machine has {have} "
                         "(use --device cpu or auto)")
    return torch.device("cuda", wanted)


def set_threads(n: int) -> None:
    """Give torch, numba and OpenMP ``n`` threads each in this process (e.g. a task's CPUs).

    Numba is set first: starting its threading layer may change torch's OpenMP thread count, so
    torch's is set last. Numba cannot go above the thread count it started with
    (``NUMBA_NUM_THREADS``); it gets the smaller of the two.
    """
    check_scalar(n, "threads", int, min_val=1)
    os.environ["OMP_NUM_THREADS"] = str(n)
    import numba

    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    torch.set_num_threads(n)


def threads_for(cpus: float) -> int:
    """Threads for a task given ``cpus`` CPUs (fractions allowed): at least one."""
    return max(1, int(cpus))


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of ``module``'s first parameter or buffer (CPU for a module without any)."""
    tensor = next(itertools.chain(module.parameters(), module.buffers()), None)
    return torch.device("cpu") if tensor is None else tensor.device
