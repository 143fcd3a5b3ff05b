"""Benchmark: the cost of a new chip under the ``neuralfuse-code`` layout against ``arrays``.

Times, in one run on one machine, for neuralfuse's CIFAR ResNet18 (11.17M int8 weights), entering
and leaving ``Deployment.at(ber=..., chip=k)`` nested in ``quantized()`` (only the weights a chip's
faults change are written), a new chip each time, under each layout, and a batch-128 forward pass
for scale. Prints ``neuralfuse-code / arrays`` per BER (the baseline is arrays, measured in the
same rounds) and ``at / forward``.

    OMP_NUM_THREADS=1 python bench/bench_layouts.py
    OMP_NUM_THREADS=1 python bench/bench_layouts.py --rounds 10 --bers 0.01
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from neuralfuse.models import create_model
from sramsim import Deployment
from sramsim.layouts import LAYOUTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of interleaved measurements")
    parser.add_argument("--bers", default="0.01,0.03", help="comma-separated bit-error rates")
    parser.add_argument("--batch", type=int, default=128, help="batch size of the forward pass")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = create_model("resnet18").eval()
    # one copy per layout: a Deployment refuses a model another one has written to
    deployments = {name: Deployment(copy.deepcopy(model), layout=name) for name in LAYOUTS}
    x = torch.randn(args.batch, 3, 32, 32)
    print(f"{deployments['arrays']}\ntorch {torch.__version__}, {torch.get_num_threads()} threads")
    with torch.inference_mode():
        start = time.perf_counter()
        model(x)
        forward = time.perf_counter() - start
    chip = iter(range(10**9))
    for ber in (float(b) for b in args.bers.split(",")):
        times = {name: [] for name in LAYOUTS}
        for _ in range(args.rounds + 1):                   # the first round warms up
            for name, deployment in deployments.items():
                with deployment.quantized():
                    start = time.perf_counter()
                    with deployment.at(ber=ber, chip=next(chip)):
                        pass
                    times[name].append(time.perf_counter() - start)
        median = {name: statistics.median(t[1:]) for name, t in times.items()}
        print(f"BER {ber:g}: " + ", ".join(f"{name} {1000 * s:.1f} ms" for name, s in median.items())
              + f"; neuralfuse-code / arrays = {median['neuralfuse-code'] / median['arrays']:.2f}; "
              + ", ".join(f"{name} at / forward = {s / forward:.3f}" for name, s in median.items()))
    print(f"forward (batch {args.batch}): {1000 * forward:.1f} ms")


if __name__ == "__main__":
    main()
