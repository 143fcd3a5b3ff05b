"""Benchmark: the wall time of the main job, `neuralfuse demo`, and the voltage sweep's share of it.

Runs :func:`neuralfuse.run_demo` (the default setup and budget unless told otherwise) into a
temporary folder and prints its wall time and that of the sweep inside it. The README quotes
these figures; the test suite only checks what the demo computes, since wall time depends on the
machine and on what else runs on it.

    OMP_NUM_THREADS=1 python bench/bench_demo.py
    OMP_NUM_THREADS=1 python bench/bench_demo.py --setup resnet18-w0.25 --chips 2
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch

import neuralfuse.demo
from neuralfuse.shipped import DEFAULT_SETUP, names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", choices=names(), default=DEFAULT_SETUP)
    parser.add_argument("--chips", type=int, default=None, help="evaluation chips [default: the setup's]")
    parser.add_argument("--samples", type=int, default=None, help="test images [default: the setup's]")
    args = parser.parse_args()

    sweep, sweep_seconds = neuralfuse.demo.sweep, []

    def timed_sweep(*positional, **keywords):
        start = time.perf_counter()
        try:
            return sweep(*positional, **keywords)
        finally:
            sweep_seconds.append(time.perf_counter() - start)

    neuralfuse.demo.sweep = timed_sweep   # the name run_demo calls
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        neuralfuse.demo.run_demo(out, setup=args.setup, chips=args.chips, samples=args.samples, progress=False)
        total = time.perf_counter() - start
    print(f"neuralfuse demo --setup {args.setup}: torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"wall time {total:.1f} s; sweep {sum(sweep_seconds):.1f} s ({sum(sweep_seconds) / total:.0%} of it)")


if __name__ == "__main__":
    main()
