"""Benchmark: what Ray costs and gives for sweeps on this machine, all measured in one run.

- ``start-up``: ``ray.init`` of a local instance with 2 CPUs (no dashboard);
- ``overhead per task``: a batch of empty tasks (workers already started), per task; and the first
  task on a fresh worker (worker process start-up);
- ``sweep throughput``: a shipped base model and generator (``--setup``, a ``neuralfuse demo`` setup) swept
  over a few voltages and chips (a) in one local process with 2 torch threads, before and after
  the Ray runs (the machine's load drifts), (b) as Ray tasks on two 1-CPU workers, cold (the first
  Ray sweep, workers import torch) and warm (a second one), and (c) in one local process with 1
  thread; points per second and the ratios to (a), the faster of its two runs;
- ``numba cache``: a fresh process deploying a model and applying one chip, with an empty numba
  cache (the kernels compile) and with the cache the first one wrote; the ratio.

    python bench/bench_ray.py
    python bench/bench_ray.py --samples 1000 --chips 6 --voltages 0.78:0.86:0.02

It needs the [ray] extra. On a machine shared with other jobs, every figure is noisy; the ratios
within one run are what it reports.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from neuralfuse.devices import set_threads

NUMBA_TASK = """
import time
start = time.perf_counter()
import torch
from sramsim import Deployment
from neuralfuse.models import create_model
deployment = Deployment(create_model("resnet18", width=0.25))
with deployment.quantized(), deployment.at(ber=0.01, chip=0):
    pass
print(time.perf_counter() - start)
"""


def sweep_seconds(args, out: Path, runner=None) -> float:
    """Seconds of one sweep of the demo's base model and generator into ``out``."""
    from neuralfuse.checkpoint import load_base_model
    from neuralfuse.data import load_dataset
    from neuralfuse.shipped import SETUPS
    from neuralfuse.checkpoint import load_generator
    from neuralfuse.data import fixed_subset
    from neuralfuse.tradeoff import parse_voltages, sweep

    setup = SETUPS[args.setup]
    base, _ = load_base_model(setup.base)
    generator, _ = load_generator(setup.generator_run, base=base)
    data = fixed_subset(load_dataset("default", split="test"), args.samples)
    start = time.perf_counter()
    sweep(base, data, parse_voltages(args.voltages), generators={"nf": generator}, chips=args.chips,
          out_dir=out, runner=runner)
    return time.perf_counter() - start


def numba_start(cache_dir: str) -> float:
    """Seconds for a fresh process to deploy a model and apply one chip, numba caching into ``cache_dir``."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", NUMBA_TASK], capture_output=True, text=True, env=env, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def nothing() -> None:
    """An empty task."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", default="resnet18-w0.25", help="shipped demo setup (neuralfuse.shipped)")
    parser.add_argument("--samples", type=int, default=500, help="test images per point")
    parser.add_argument("--chips", type=int, default=4)
    parser.add_argument("--voltages", default="0.80:0.86:0.02")
    parser.add_argument("--tasks", type=int, default=200, help="empty tasks timed for the overhead")
    args = parser.parse_args()

    import ray

    from neuralfuse.distributed import ray_runner, runtime_env

    print(f"torch {torch.__version__}, ray {ray.__version__}, {os.cpu_count()} CPUs (shared with other jobs)")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cold_cache = numba_start(str(tmp / "numba"))   # compiles and writes the cache
        warm_cache = numba_start(str(tmp / "numba"))   # reads it
        print(f"numba: a fresh process deploying ResNet18 and applying a chip: {cold_cache:.2f} s without "
              f"the kernel cache, {warm_cache:.2f} s with it (ratio {cold_cache / warm_cache:.2f}x)")

        set_threads(2)
        local_before = sweep_seconds(args, tmp / "local")
        set_threads(1)
        n_points = len(list((tmp / "local" / "points").glob("v*.json")))
        print(f"sweep: {n_points} points ({args.samples} images, base and base+generator per point)")
        print(f"  one local process, 2 threads (before): {local_before:7.2f} s  {n_points / local_before:6.3f} points/s")

        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, runtime_env=runtime_env(), log_to_driver=False)
        started = time.perf_counter() - start
        try:
            remote = ray.remote(nothing).options(num_cpus=1)
            start = time.perf_counter()
            ray.get(remote.remote())
            first = time.perf_counter() - start
            ray.get([remote.remote() for _ in range(20)])  # warm both workers
            start = time.perf_counter()
            ray.get([remote.remote() for _ in range(args.tasks)])
            per_task = (time.perf_counter() - start) / args.tasks

            runner = ray_runner(cpus_per_task=1)
            cold = sweep_seconds(args, tmp / "ray-cold", runner)
            warm = sweep_seconds(args, tmp / "ray-warm", runner)
        finally:
            ray.shutdown()
        set_threads(2)
        local_after = sweep_seconds(args, tmp / "local-after")
        set_threads(1)
        one_thread = sweep_seconds(args, tmp / "local-1-thread")
        local = min(local_before, local_after)
        print(f"  one local process, 2 threads (after):  {local_after:7.2f} s  {n_points / local_after:6.3f} points/s")
        print(f"  one local process, 1 thread:           {one_thread:7.2f} s  {n_points / one_thread:6.3f} points/s  "
              f"({local / one_thread:.2f}x local 2 threads)")
        same = all((tmp / "local" / name).read_bytes() == (tmp / run / name).read_bytes()
                   for run in ("ray-cold", "ray-warm", "local-after", "local-1-thread")
                   for name in ("sweep.csv", "chips.csv"))
        print(f"  Ray, two 1-CPU workers, cold workers:  {cold:7.2f} s  {n_points / cold:6.3f} points/s  "
              f"({local / cold:.2f}x local)")
        print(f"  Ray, two 1-CPU workers, warm workers:  {warm:7.2f} s  {n_points / warm:6.3f} points/s  "
              f"({local / warm:.2f}x local)")
        print(f"  sweep.csv and chips.csv of every run byte-identical to the first local sweep: {same}")
        print(f"ray: cluster start-up {started:.2f} s; first task on a fresh worker {first:.2f} s; "
              f"overhead per task (warm, {args.tasks} empty tasks) {per_task * 1e3:.2f} ms")
        print(f"ratios: start-up / local sweep {started / local:.2f}; per-task overhead / mean point time "
              f"{per_task / (local / n_points):.4f}")


if __name__ == "__main__":
    main()
