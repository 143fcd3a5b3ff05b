"""Run sweeps and training grids on a Ray cluster (the optional ``[ray]`` extra).

    from neuralfuse.distributed import ray_runner
    sweep(base, test_set, voltages, generators=..., out_dir="sweep",
          runner=ray_runner(address=None, cpus_per_task=1))        # None: a local Ray instance

Only this module imports Ray, and only when it is called: ``import neuralfuse`` never needs it.

Sweeps: one Ray task per :class:`neuralfuse.tradeoff.ChipTask` (one chip, all its missing
voltages, every configuration). The base model and the inputs of every configuration are put in
the object store once and every task reads them from there. Tasks write the same atomic point
files as a local sweep and return what they measured, at the sweep's arithmetic precision
(:class:`neuralfuse.tradeoff.SweepWork` carries it; fp16 needs tasks with GPUs). A task whose
worker dies is retried (``max_retries``); the retry skips the points already on disk, so no point
is lost or written twice. Application errors are not retried: they are raised here.

Threads: each task sets torch, numba and OpenMP to its CPUs (:func:`neuralfuse.devices.set_threads`).
A task given GPUs (``gpus_per_task > 0``) runs on the CUDA device Ray assigns it.

Workers import this project from the driver's ``PYTHONPATH`` plus the folder it was imported from
(:func:`runtime_env`), so a local cluster runs the code of the checkout that started it; on a
multi-node cluster, install the same version on every node.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from neuralfuse.devices import set_threads, threads_for
from neuralfuse.precision import check_precision

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The folder holding the ``neuralfuse`` package this process runs."""
MAX_RETRIES = 3
"""How often a task whose worker died is run again."""


def runtime_env() -> dict[str, Any]:
    """The Ray runtime environment that lets workers import the driver's copy of this project."""
    paths = [str(PROJECT_ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}}


def connect(address: str | None = None) -> None:
    """Connect to the Ray cluster at ``address`` (None: a local instance) unless already connected.

    Raises ImportError with the install command when Ray is missing.
    """
    ray = import_ray()
    if not ray.is_initialized():
        ray.init(address=address, runtime_env=runtime_env(), include_dashboard=False,
                 log_to_driver=False)


def import_ray():
    """The ``ray`` module, or an ImportError saying how to install it."""
    try:
        import ray
    except ImportError as err:
        raise ImportError("Ray is not installed: pip install 'lowvolt-neuralfuse[ray]'") from err
    return ray


def check_resources(cpus_per_task: float, gpus_per_task: float) -> None:
    """Raise ValueError unless the per-task resources are usable (CPUs > 0, GPUs >= 0)."""
    if not cpus_per_task > 0:
        raise ValueError(f"cpus_per_task={cpus_per_task!r} is not valid: use a positive number (fractions allowed)")
    if not gpus_per_task >= 0:
        raise ValueError(f"gpus_per_task={gpus_per_task!r} is not valid: use a number >= 0 (fractions allowed)")


def task_device(gpus: float) -> str:
    """The device a task given ``gpus`` GPUs runs on."""
    return "cuda" if gpus > 0 else "cpu"


def ray_runner(address: str | None = None, *, cpus_per_task: float = 1.0, gpus_per_task: float = 0.0,
               max_retries: int = MAX_RETRIES) -> Callable:
    """A sweep runner (see :data:`neuralfuse.tradeoff.Runner`) that runs each chip as a Ray task.

    Connects on first use. ``progress`` shows a bar counting finished points (complete point
    files when the sweep has a folder, else finished tasks' points).
    """
    check_resources(cpus_per_task, gpus_per_task)

    def run(work, tasks: Sequence, progress: bool = False) -> dict:
        check_precision(work.precision, task_device(gpus_per_task))
        connect(address)
        shared = import_ray().put(work.to("cpu"))  # one copy in the object store for all tasks
        refs = _submit(_sweep_chip, [(shared, task) for task in tasks], cpus_per_task, gpus_per_task,
                       max_retries)
        unfinished = {(p, t.chip) for t in tasks for p in t.points}
        total = len(unfinished)

        def finished(results: dict) -> int:
            if work.points_dir is None:
                return sum(len(measured) for measured in results.values())
            # a point is read until its file holds every configuration, then no more
            unfinished.difference_update([p for p in unfinished if not work.missing(work.saved(*p))])
            return total - len(unfinished)

        with tqdm(total=total, desc="sweep (ray)", unit="point",
                  disable=not progress, dynamic_ncols=True) as bar:
            results = _wait(refs, bar, finished)
        return {key: values for ref in refs for key, values in results[ref].items()}

    return run


def _sweep_chip(work, task, device: str) -> dict:
    """One chip of a sweep, in a Ray worker (see :func:`neuralfuse.tradeoff.measure_chip`)."""
    from neuralfuse.tradeoff import measure_chip

    work = work.to(device)
    deployment = work.deployment()
    with deployment.quantized():
        return measure_chip(work, task, deployment)


def map_tasks(function: Callable, arguments: Sequence[tuple], *, address: str | None = None,
              cpus_per_task: float = 1.0, gpus_per_task: float = 0.0, max_retries: int = MAX_RETRIES,
              progress: bool = False, desc: str = "tasks") -> list:
    """``[function(*args, device) for args in arguments]``, each call one Ray task.

    Each task gets ``cpus_per_task`` CPUs and ``gpus_per_task`` GPUs, runs with that many threads
    (:func:`neuralfuse.devices.set_threads`) and receives its device (``"cpu"`` or ``"cuda"``) as
    the last argument. Results come back in order; a task whose worker died is retried up to
    ``max_retries`` times; when one fails the others are cancelled and the error is raised.
    """
    check_resources(cpus_per_task, gpus_per_task)
    connect(address)
    refs = _submit(function, arguments, cpus_per_task, gpus_per_task, max_retries)
    with tqdm(total=len(refs), desc=desc, unit="task", disable=not progress, dynamic_ncols=True) as bar:
        results = _wait(refs, bar, len)
    return [results[ref] for ref in refs]


def _submit(function: Callable, arguments: Sequence[tuple], cpus: float, gpus: float,
            max_retries: int) -> list:
    """Start one Ray task per tuple of ``arguments``: ``function(*args, device)`` (see :func:`_call`)."""
    ray = import_ray()
    remote = ray.remote(_call).options(num_cpus=cpus, num_gpus=gpus, max_retries=max_retries,
                                       retry_exceptions=False)
    threads, device = threads_for(cpus), task_device(gpus)
    # arguments go top level, so Ray resolves object references among them
    return [remote.remote(function, threads, device, *args) for args in arguments]


def _call(function: Callable, threads: int, device: str, *args: Any) -> Any:
    """``function(*args, device)`` with ``threads`` threads, in a Ray worker."""
    set_threads(threads)
    return function(*args, device)


def _wait(refs: list, bar: tqdm, finished: Callable[[dict], int]) -> dict:
    """The results of ``refs`` by reference, as they finish; ``bar`` shows ``finished(results)``.
    When a task fails (or on Ctrl-C) the others are cancelled and the error is raised; what they
    saved stays."""
    ray = import_ray()
    results, pending = {}, list(refs)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            for ref in done:
                results[ref] = ray.get(ref)
            bar.update(finished(results) - bar.n)
    except BaseException:
        for ref in pending:
            ray.cancel(ref)
        raise
    return results
