"""Benchmark: the cost of one EOPM step against the passes it cannot avoid.

An EOPM step must do one generator forward/backward and one clean plus N perturbed base-model
forward/backward passes. This script times, on the same batch and in the same run, interleaved,

- ``step``: :func:`neuralfuse.eopm.eopm_step` (fresh chips every step, faults written and
  cleared by ``Deployment.at``, the optimizer step included), inside ``Deployment.quantized()`` as
  :func:`neuralfuse.eopm.train` runs it;
- ``passes``: only those passes on unperturbed weights (generator forward, N+1 base-model
  forward/backward to the input, one generator backward),

and prints the median over rounds of ``step / passes`` (each round times both back to back, so a
busy machine slows both alike); it must stay at most 1.15, for N = 5 and N = 10. On a machine shared
with other jobs, ``--threads 1`` avoids stalls of torch's worker threads that inflate every small
operation (the optimizer step most) and with them the ratio.

    python bench/bench_eopm.py                       # resnet18 (width 0.25), UNetS and UNetL, 1% BER
    python bench/bench_eopm.py --repeats 30 --generators UNetL --n 5 10
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from neuralfuse.chips import training_chips
from neuralfuse.devices import set_threads
from neuralfuse.eopm import eopm_step, frozen
from neuralfuse.generators import create_generator
from neuralfuse.models import create_model
from sramsim import Deployment, OperatingPoint

LIMIT = 1.15


def unavoidable_passes(generator, base, x, y, n_chips: int) -> None:
    """Generator forward, 1 + N base forward/backward passes to the input, generator backward."""
    z = generator(x)
    leaf = z.detach().requires_grad_(True)
    for _ in range(1 + n_chips):
        F.cross_entropy(base(leaf), y).backward()
    z.backward(leaf.grad)


def measure(generator_name: str, n_chips: int, repeats: int, ber: float,
            batch: int) -> tuple[list[float], list[float]]:
    """Seconds of each (EOPM step, unavoidable passes), timed alternately on one batch."""
    torch.manual_seed(0)
    base = frozen(create_model("resnet18", width=0.25))
    generator = create_generator(generator_name).train()
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    deployment = Deployment(base, bits=8)
    point = OperatingPoint.resolve(ber=ber)
    x = torch.rand(batch, 3, 32, 32) * 2 - 1
    y = torch.randint(0, 10, (batch,))

    def run_step(i: int) -> None:
        eopm_step(generator, optimizer, [deployment], x, y, chips=training_chips(0, 0, i, n_chips),
                  point=point, lam=5.0)

    def run_passes(i: int) -> None:
        generator.zero_grad(set_to_none=True)
        unavoidable_passes(generator, base, x, y, n_chips)

    times: dict = {run_step: [], run_passes: []}
    with deployment.quantized():
        for i in range(repeats + 2):  # the first two rounds warm up
            for run in (run_step, run_passes) if i % 2 else (run_passes, run_step):  # alternate the order
                start = time.perf_counter()
                run(i)
                if i >= 2:
                    times[run].append(time.perf_counter() - start)
    return times[run_step], times[run_passes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generators", nargs="+", default=["UNetS", "UNetL"])
    parser.add_argument("--n", nargs="+", type=int, default=[5, 10], help="chips per step")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--ber", type=float, default=0.01)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--threads", type=int, default=None, help="torch threads [default: torch's]")
    args = parser.parse_args()
    if args.threads:
        set_threads(args.threads)
    print(f"base resnet18 (width 0.25), batch {args.batch}, BER {args.ber}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats} rounds")
    print(f"{'generator':<10}{'N':>4}{'step (ms)':>12}{'passes (ms)':>13}{'ratio':>8}")
    worst = 0.0
    for name in args.generators:
        for n in args.n:
            steps, passes = measure(name, n, args.repeats, args.ber, args.batch)
            ratio = statistics.median([step / unavoidable for step, unavoidable in zip(steps, passes)])
            worst = max(worst, ratio)
            print(f"{name:<10}{n:>4}{1e3 * statistics.median(steps):>12.1f}"
                  f"{1e3 * statistics.median(passes):>13.1f}{ratio:>8.3f}")
    print(f"worst ratio {worst:.3f} (limit {LIMIT}): {'OK' if worst <= LIMIT else 'TOO SLOW'}")


if __name__ == "__main__":
    main()
