"""Benchmark: the cost of running a ResNet18-size model on a new simulated chip.

Times, in one run on one machine, for neuralfuse's CIFAR ResNet18 (11.17M int8 weights):

- ``forward``: one batch-128 forward pass (eval mode, no grad);
- ``at``: entering and leaving ``Deployment.at(voltage=0.83, chip=k)`` with a new chip each time,
  (a) alone, where every stored tensor is rewritten in full to its quantized values on entry and
  to its original values on exit, and (b) nested in ``Deployment.quantized()``, where only the
  weights the chip's faults change are written and cleared (index writes);
- ``naive``: the obvious torch version of one chip: a Bernoulli mask over every stored bit plus a
  random stuck value per bit, applied to the precomputed codes, written in and copied back.

It prints ``at / forward`` (must stay at most 5%) and ``naive / at``.

    python bench/bench_deploy.py
    python bench/bench_deploy.py --rounds 10 --voltage 0.8
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch

import characterization
from neuralfuse.models import create_model
from sramsim import Deployment
from sramsim.deployment import stored_tensors
from sramsim.quant import from_codes, quantize, to_codes

LIMIT = 0.05


def seconds(action: Callable[[], object]) -> float:
    """Wall time of one call of ``action``."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def naive_chip(model: torch.nn.Module, codes: list[torch.Tensor], scales: list[torch.Tensor],
               ber: float, generator: torch.Generator) -> None:
    """Apply one chip's stuck-at faults by drawing a Bernoulli mask over every stored bit, run
    nothing, and restore the weights (what ``at`` does, the obvious way)."""
    params = [p for _, p in stored_tensors(model)]
    originals = [p.detach().clone() for p in params]
    with torch.no_grad():
        for param, code, scale in zip(params, codes, scales):
            faulty = torch.rand((8, *code.shape), generator=generator) < ber
            stuck = torch.rand((8, *code.shape), generator=generator) < 0.5
            bit = torch.arange(8, dtype=torch.uint8).view(8, *[1] * code.dim())
            keep = (faulty.to(torch.uint8) << bit).sum(0, dtype=torch.uint8) ^ 0xFF
            value = ((faulty & stuck).to(torch.uint8) << bit).sum(0, dtype=torch.uint8)
            param.copy_(from_codes(code & keep | value) * scale)
        for param, original in zip(params, originals):
            param.copy_(original)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds of interleaved measurements")
    parser.add_argument("--voltage", type=float, default=0.83, help="supply voltage, V/Vmin")
    parser.add_argument("--batch", type=int, default=128, help="batch size of the forward pass")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = create_model("resnet18").eval()
    deployment = Deployment(model, bits=8)
    ber = characterization.load(deployment.tech).ber(args.voltage)
    x = torch.randn(args.batch, 3, 32, 32)
    naive_model = copy.deepcopy(model)  # the naive version writes weights behind deployment's back
    quantized = [quantize(p, 8) for _, p in stored_tensors(naive_model)]
    codes, scales = [to_codes(q) for q, _ in quantized], [s for _, s in quantized]
    generator = torch.Generator().manual_seed(0)
    print(f"{deployment}\ntorch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"V/Vmin {args.voltage} -> BER {ber:.4g}")

    chips = iter(range(1000, 10**6))

    def enter_and_leave() -> None:
        with deployment.at(voltage=args.voltage, chip=next(chips)):
            pass

    def forward() -> None:
        with torch.no_grad():
            model(x)

    # Rounds interleave every measurement, so that a machine shared with other jobs loads them
    # alike; each figure is the median over rounds (round 0 warms up and is dropped).
    rows = []
    for _ in range(args.rounds + 1):
        row = {"forward": seconds(forward),
               "alone": statistics.median(seconds(enter_and_leave) for _ in range(3))}
        with deployment.quantized():
            row["nested"] = statistics.median(seconds(enter_and_leave) for _ in range(3))
        row["naive"] = seconds(lambda: naive_chip(naive_model, codes, scales, ber, generator))
        rows.append(row)
    rows = rows[1:]

    def median(key: str, over: str | None = None) -> float:
        return statistics.median(r[key] / (r[over] if over else 1.0) for r in rows)

    print(f"forward pass, batch {args.batch}:            {median('forward') * 1e3:8.1f} ms")
    print(f"at() alone (full rewrite + faults):     {median('alone') * 1e3:8.1f} ms   "
          f"{median('alone', 'forward'):6.2%} of a forward pass")
    print(f"at() inside quantized() (faults only):  {median('nested') * 1e3:8.1f} ms   "
          f"{median('nested', 'forward'):6.2%} of a forward pass")
    print(f"naive Bernoulli mask over every bit:    {median('naive') * 1e3:8.1f} ms")
    print(f"speed-up over naive: {median('naive', 'alone'):.1f}x alone, "
          f"{median('naive', 'nested'):.1f}x inside quantized()")
    ratio = median("alone", "forward")
    print(f"{'PASS' if ratio <= LIMIT else 'FAIL'}: at() costs {ratio:.2%} of a forward pass "
          f"(limit {LIMIT:.0%})")


if __name__ == "__main__":
    main()
