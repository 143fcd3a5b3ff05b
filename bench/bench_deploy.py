"""Benchmark: the cost of running a model on a new simulated chip, against the goals below.

Times, in one run on one machine, at 0.834 Vmin (BER 1% on the measured 14nm curve) with 8-bit weights and a new chip per call:

ResNet18 (neuralfuse's CIFAR ResNet18, full width, random init: 11.17M weights, none on the
quantization grid, so entering ``at`` rewrites every weight):

- ``forward``: one batch-128 forward pass (eval mode, no grad);
- ``at() alone``: entering and leaving ``Deployment.at(voltage=0.834, chip=k)``: every stored tensor's
  quantized values plus the chip's faults written to its scratch tensor and the parameters swapped
  to those, then swapped back to their originals;
- ``at() nested``: the same inside ``Deployment.quantized()``: only the weights the faults change
  are written and cleared;
- ``..., a forward pass inside``: the same two, entered after a forward pass and left after one
  inside the block (not counted), as in a loop over chips that evaluates each: the writes then
  meet the cache as such a loop leaves it, the others run back to back;
- ``fair naive``: what ``at() alone`` does, written plainly in torch: per tensor a Binomial count
  of faulty cells, uniform random positions and stuck values, the codes changed there, every weight
  written, and restored from originals cloned once (not per call);
- where ``at() alone`` goes: its three steps timed one by one (the deployment's internals, in the
  order ``at`` runs them): the chip's faults drawn and applied to the integer weights, every weight
  written (quantized, with the chip's values where faults change them), the parameters swapped
  back to their originals.

Goals: with an fp32 forward pass, ``at() alone`` at most 2% of it on 2 cores; with a bf16 one (three
times cheaper), ``at()`` nested in ``quantized()`` at most 5% of it.

Transformer (12 ``nn.TransformerEncoderLayer`` of width 768, a 50,257-token embedding and output
layer: 162M weights, embeddings included), ``at()`` nested in ``quantized()``. Goal: 0.4 s per chip.

Each measurement is repeated with 1 and with 2 threads (torch and numba, ``--threads``), rounds
interleave the measurements so that a machine shared with other jobs loads them alike, and each
figure is the median over rounds (round 0 warms up and is dropped); a share of the forward pass is
the median over rounds of each round's own ratio, with its range, as the machine's speed drifts.
Wall time and the process's CPU time are both printed, and each share of the forward pass in both:
on a busy machine the CPU time is the steadier of the two (the goals are checked on wall time). On a machine with more runnable threads than cores, OpenMP's idle threads
spin (numba's default ``omp`` layer): run with ``OMP_WAIT_POLICY=passive`` (or
``NUMBA_THREADING_LAYER=workqueue``) there, or the 2-thread figures measure the spinning.

    python bench/bench_deploy.py
    python bench/bench_deploy.py --threads 2 --rounds 5 --models resnet18
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numba
import numpy as np
import torch
from torch import nn

import characterization
from neuralfuse.devices import set_threads
from neuralfuse.models import create_model
from neuralfuse.precision import PRECISIONS, autocast
from sramsim import Deployment
from sramsim.deployment import stored_tensors
from sramsim.quant import from_codes, quantize, to_codes

RESNET_GOALS = {"fp32": ("alone", "at() alone", 0.02), "bf16": ("nested", "at() nested in quantized()", 0.05)}
"""Per forward-pass precision: the measurement the goal is on, its label, and the most it may cost."""
TRANSFORMER_GOAL = 0.4  # seconds per chip


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of one call of ``action``."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def median_timed(action: Callable[[], object], repeats: int) -> tuple[float, float]:
    runs = [timed(action) for _ in range(repeats)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


class FairNaive:
    """One chip's stuck-at faults at rate ``ber`` written plainly in torch (see the module docstring)."""

    def __init__(self, model: nn.Module, ber: float, bits: int = 8, seed: int = 0) -> None:
        self.params = [p for _, p in stored_tensors(model)]
        self.originals = [p.detach().clone() for p in self.params]
        quantized = [quantize(p, bits) for p in self.params]
        self.codes = [to_codes(q, bits).reshape(-1) for q, _ in quantized]
        self.scales = [s for _, s in quantized]
        self.ber, self.bits = ber, bits
        self.rng = np.random.default_rng(seed)

    @torch.no_grad()
    def chip(self) -> None:
        """Write one chip's faulty weights, then restore the originals."""
        for param, codes, scale in zip(self.params, self.codes, self.scales):
            n_cells = codes.numel() * self.bits
            count = int(self.rng.binomial(n_cells, self.ber))
            cells = torch.from_numpy(self.rng.integers(0, n_cells, count))
            stuck = torch.from_numpy(self.rng.integers(0, 2, count, dtype=np.uint8))
            word, bit = cells // self.bits, (cells % self.bits).to(torch.uint8)
            faulty = codes.clone()
            faulty[word] = faulty[word] & ~(1 << bit) | stuck << bit   # a repeated word keeps one fault
            param.copy_((from_codes(faulty, self.bits) * scale).view_as(param))
        for param, original in zip(self.params, self.originals):
            param.copy_(original)


class Transformer(nn.Module):
    """A GPT-2-size stack: token embedding, 12 encoder layers of width 768, output layer."""

    def __init__(self, vocabulary: int = 50257, width: int = 768, layers: int = 12) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocabulary, width)
        layer = nn.TransformerEncoderLayer(width, 12, 4 * width, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, vocabulary)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(tokens)))


def bench_resnet(args: argparse.Namespace, ber: float) -> None:
    torch.manual_seed(0)
    model = create_model("resnet18").eval()
    deployment = Deployment(model, bits=8)
    naive_model = create_model("resnet18").eval()   # written behind no deployment's back
    naive = FairNaive(naive_model, ber)
    x = torch.randn(args.batch, 3, 32, 32)
    chips = iter(range(1000, 10**9))
    print(f"\nResNet18: {deployment}")

    def enter_and_leave() -> None:
        with deployment.at(voltage=args.voltage, chip=next(chips)):
            pass

    def forward() -> None:
        with torch.no_grad(), autocast(args.precision, x.device):
            model(x)

    def around_forward() -> tuple[float, float]:
        """(wall, CPU) seconds of entering and leaving ``at`` for a new chip, with a forward pass
        inside the block that is not counted."""
        block = deployment.at(voltage=args.voltage, chip=next(chips))
        enter = timed(block.__enter__)
        forward()
        leave = timed(lambda: block.__exit__(None, None, None))
        return enter[0] + leave[0], enter[1] + leave[1]

    def steps() -> tuple[float, float, float]:
        """Wall seconds of the three steps of ``at() alone`` for a new chip."""
        point, times = deployment.point(voltage=args.voltage), [time.perf_counter()]
        faults = deployment._faults(next(chips), point, reuse_buffers=True)
        times.append(time.perf_counter())
        deployment._writer.write_quantized(faults.bounds, faults.index, faults.value)
        times.append(time.perf_counter())
        deployment._writer.clear(faults.bounds, faults.index, faults.clean, skip_rewritten=True)
        deployment._writer.restore()
        times.append(time.perf_counter())
        return times[1] - times[0], times[2] - times[1], times[3] - times[2]

    for threads in args.threads:
        set_threads(threads)
        rows = []
        for _ in range(args.rounds + 1):
            row = {"forward": timed(forward), "alone": median_timed(enter_and_leave, 3),
                   "alone_loop": around_forward()}
            with deployment.quantized():
                row["nested"] = median_timed(enter_and_leave, 3)
                forward()
                row["nested_loop"] = around_forward()
            row["naive"] = timed(naive.chip)
            forward()
            row["steps"] = steps()
            rows.append(row)
        rows = rows[1:]

        def med(key: str, i: int) -> float:
            return statistics.median(r[key][i] for r in rows)

        def share(key: str, i: int = 0) -> tuple[float, float, float]:
            """Median, lowest and highest over rounds of the round's wall (``i=0``) or CPU (``i=1``)
            time over its forward pass's."""
            shares = [r[key][i] / r["forward"][i] for r in rows]
            return statistics.median(shares), min(shares), max(shares)

        print(f"  {threads} thread(s): forward pass, batch {args.batch}: "
              f"{med('forward', 0) * 1e3:8.1f} ms wall ({med('forward', 1) * 1e3:.0f} ms CPU)")
        for key, label in (("alone", "at() alone"), ("nested", "at() nested in quantized()"),
                           ("alone_loop", "at() alone, a forward pass inside"),
                           ("nested_loop", "at() nested, a forward pass inside"),
                           ("naive", "fair naive (Binomial + positions)")):
            mid, low, high = share(key)
            cpu_mid, cpu_low, cpu_high = share(key, 1)
            print(f"    {label:36s} {med(key, 0) * 1e3:8.1f} ms wall {mid:7.2%} of a forward pass "
                  f"(rounds {low:.2%}-{high:.2%})   ({med(key, 1) * 1e3:6.1f} ms CPU, {cpu_mid:.2%} of its "
                  f"CPU time, rounds {cpu_low:.2%}-{cpu_high:.2%})")
        draw, write, restore = (statistics.median(r["steps"][i] for r in rows) for i in range(3))
        print(f"    where at() alone goes: faults drawn and applied {draw * 1e3:.1f} ms "
              f"({draw / med('forward', 0):.2%} of a forward pass), weights written {write * 1e3:.1f} ms, "
              f"swapped back {restore * 1e3:.1f} ms")
        print(f"    speed-up over the fair naive version: {med('naive', 0) / med('alone', 0):.1f}x alone, "
              f"{med('naive', 0) / med('nested', 0):.1f}x nested")
        key, label, goal = RESNET_GOALS[args.precision]
        ratio = share(key)[0]
        print(f"    {'PASS' if ratio <= goal else 'FAIL'}: {label} costs {ratio:.2%} of a {args.precision} "
              f"forward pass with {threads} thread(s) (goal {goal:.0%})")


def bench_transformer(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    model = Transformer().eval()
    deployment = Deployment(model, bits=8, include_embeddings=True)
    print(f"\nTransformer: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, "
          f"{deployment}")
    chips = iter(range(1000, 10**9))

    def enter_and_leave() -> None:
        with deployment.at(voltage=args.voltage, chip=next(chips)):
            pass

    with deployment.quantized():
        for threads in args.threads:
            set_threads(threads)
            runs = [timed(enter_and_leave) for _ in range(args.rounds + 1)][1:]
            wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
            print(f"  {threads} thread(s): at() nested in quantized(): {wall:.3f} s wall per chip "
                  f"({cpu:.3f} s CPU)   {'PASS' if wall <= TRANSFORMER_GOAL else 'FAIL'} "
                  f"(goal {TRANSFORMER_GOAL} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (plus one warm-up)")
    parser.add_argument("--voltage", type=float, default=0.834, help="supply voltage, V/Vmin")
    parser.add_argument("--precision", choices=PRECISIONS[:2], default="fp32",
                        help="arithmetic of the forward pass (neuralfuse.precision): the chip's cost is "
                        "the same, its share of a bf16 forward pass larger")
    parser.add_argument("--batch", type=int, default=128, help="batch size of the forward pass")
    parser.add_argument("--threads", type=lambda s: [int(t) for t in s.split(",")], default=[1, 2],
                        help="comma-separated thread counts (torch and numba)")
    parser.add_argument("--models", default="resnet18,transformer", help="resnet18 and/or transformer")
    args = parser.parse_args()

    ber = characterization.load(characterization.DEFAULT_TECH).ber(args.voltage)
    print(f"torch {torch.__version__}, numba {numba.__version__} ({numba.config.NUMBA_NUM_THREADS} "
          f"threads at most), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"V/Vmin {args.voltage} -> BER {ber:.4g}; forward passes at {args.precision}")
    models = args.models.split(",")
    if "resnet18" in models:
        bench_resnet(args, ber)
    if "transformer" in models:
        bench_transformer(args)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}; numba threading layer "
          f"{numba.threading_layer()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")


if __name__ == "__main__":
    main()
