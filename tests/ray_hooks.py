"""Test helpers for the Ray tests: a module-scoped local cluster and a worker hook that kills a
worker mid-task on request.

The cluster's workers run :func:`install` when they start (Ray's ``worker_process_setup_hook``).
It wraps functions the library calls once per unit of work (``KILLABLE``); each wrapper logs every
call that completes to ``<dir>/<name>.log`` (one line per call, the worker's pid) and, while
``<dir>/<name>.arm`` exists, ends its worker with ``os._exit`` on the N-th call it sees under that
arm file (N is the file's first word; the second names the arming). The arm file is claimed by
deleting it, so exactly one worker dies.
"""
from __future__ import annotations

import importlib
import os
import uuid
from pathlib import Path

import pytest

KILL_DIR = "LOWVOLT_TEST_KILL_DIR"
KILLABLE = (("neuralfuse.tradeoff", "chip_accuracies"), ("neuralfuse.eopm", "eopm_step"))


def install() -> None:
    """Wrap the ``KILLABLE`` functions in this worker (when the cluster was started with a kill dir)."""
    directory = os.environ.get(KILL_DIR)
    if directory:
        for module, name in KILLABLE:
            _wrap(importlib.import_module(module), name, Path(directory))


def _wrap(module, name: str, directory: Path) -> None:
    original, seen = getattr(module, name), {"arming": None, "calls": 0}
    arm, log = directory / f"{name}.arm", directory / f"{name}.log"

    def wrapper(*args, **kwargs):
        try:
            after, arming = arm.read_text().split()
        except FileNotFoundError:
            after = arming = None
        if arming is not None:
            if arming != seen["arming"]:
                seen.update(arming=arming, calls=0)
            seen["calls"] += 1
            if seen["calls"] >= int(after):
                try:
                    arm.unlink()
                except FileNotFoundError:
                    pass  # another worker claimed it
                else:
                    os._exit(1)
        result = original(*args, **kwargs)
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        return result

    setattr(module, name, wrapper)


def arm(directory: Path, name: str, after: int) -> None:
    """Make the ``after``-th armed call of ``name`` in some worker kill that worker."""
    (directory / f"{name}.arm").write_text(f"{after} {uuid.uuid4().hex}")


def completed_calls(directory: Path, name: str) -> int:
    """Calls of ``name`` that completed in any worker so far."""
    log = directory / f"{name}.log"
    return len(log.read_text().splitlines()) if log.is_file() else 0


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local 2-CPU Ray instance for one test module: yields the kill-hook folder."""
    ray = pytest.importorskip("ray")
    from neuralfuse.distributed import runtime_env

    kill_dir = tmp_path_factory.mktemp("ray-kill")
    env = runtime_env()
    env["env_vars"][KILL_DIR] = str(kill_dir)
    env["env_vars"]["PYTHONPATH"] += os.pathsep + str(Path(__file__).parent)
    env["env_vars"]["OMP_NUM_THREADS"] = "1"
    env["worker_process_setup_hook"] = "ray_hooks.install"
    # Workers inherit the environment the cluster starts in; the suite's own NUMBA_NUM_THREADS=1
    # (one thread per pytest worker) would cap every task's numba threads at 1.
    suite_numba_threads = os.environ.pop("NUMBA_NUM_THREADS", None)
    try:
        ray.init(num_cpus=2, include_dashboard=False, runtime_env=env, log_to_driver=False)
    finally:
        if suite_numba_threads is not None:
            os.environ["NUMBA_NUM_THREADS"] = suite_numba_threads
    yield kill_dir
    ray.shutdown()
