"""Benchmark: fp32 against bf16 autocast (``--precision``), time and accuracy, on the shipped VGG11.

On the shipped full-width VGG11 (``neuralfuse/assets/vgg11``: base model and its UNetS generator),
in one run on one machine, with rounds interleaving fp32 and bf16 so a busy machine slows both
alike (each figure is the median over rounds; round 0 warms up and is dropped):

- ``forward``: one batch-128 forward pass (eval mode, channels-last input, no grad);
- ``eopm step``: :func:`neuralfuse.eopm.eopm_step` through the deployed base model: the
  generator's forward and backward and 1 + N base-model forward/backward passes to the input;
- ``evaluation``: the deployed model's accuracy on one chip at 1% BER over ``--samples`` test
  images of the default split (faults written, then every batch forward);
- ``torch.compile``: the batch-128 forward of a compiled copy (compile time printed apart), to
  see whether compiling the evaluation forward would help (``--no-compile`` skips it).

Then accuracy: on ``--chips`` evaluation chips at each ``--bers``, the base model alone and behind
its generator, PA at fp32 and at bf16, their difference and the share of images whose predicted
class is the same (argmax agreement). Prints the CPU model and whether it has AMX and avx512_bf16.

    python bench/bench_precision.py                   # 1 thread, 1,000 images, 5 chips, 1% and 5%
    python bench/bench_precision.py --quick           # fewer rounds, images and chips
    python bench/bench_precision.py --threads 2 --device cuda
"""
from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from neuralfuse.checkpoint import load_base_model, load_generator
from neuralfuse.chips import evaluation_chips, training_chips
from neuralfuse.data import fixed_subset, load_dataset
from neuralfuse.devices import resolve_device, set_threads
from neuralfuse.eopm import eopm_step, frozen
from neuralfuse.evaluation import chip_accuracies, load_batches, transform
from neuralfuse.memory_format import preferred_memory_format
from neuralfuse.precision import autocast
from neuralfuse.shipped import SETUPS
from sramsim import Deployment, OperatingPoint

PRECISIONS = ("fp32", "bf16")
CPU_FLAGS = ("amx_bf16", "amx_fp16", "avx512_bf16")


def cpu_description() -> str:
    """The CPU model and which of :data:`CPU_FLAGS` it has (from /proc/cpuinfo where there is one)."""
    info = Path("/proc/cpuinfo")
    text = info.read_text() if info.is_file() else ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines()
                      if line.startswith("flags")), []))
    return f"{model}; " + ", ".join(f"{flag} {'yes' if flag in flags else 'no'}" for flag in CPU_FLAGS)


def interleaved(runs: dict[str, Callable[[int], None]], rounds: int,
                sync: Callable[[], None]) -> dict[str, float]:
    """Median seconds of each ``runs[name](i)`` over ``rounds`` rounds after one warm-up round,
    the runs taking turns (their order alternating)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(rounds + 1):
        order = list(runs) if i % 2 else list(reversed(runs))
        for name in order:
            start = time.perf_counter()
            runs[name](i)
            sync()
            if i:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def report(what: str, seconds: dict[str, float]) -> None:
    """One line: each precision's time and bf16's speed-up over fp32."""
    cells = "".join(f"{1e3 * seconds[p]:>12.1f}" for p in PRECISIONS)
    print(f"{what:<34}{cells}{seconds['fp32'] / seconds['bf16']:>9.2f}x")


def predictions(model: torch.nn.Module, batches, precision: str) -> torch.Tensor:
    """The predicted class of every image of ``batches`` at ``precision``."""
    with torch.inference_mode(), autocast(precision, batches[0][0].device):
        return torch.cat([model(x).argmax(1) for x, _ in batches]).cpu()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 rounds, 300 images, 3 chips, N=2 (for a loaded machine)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--samples", type=int, default=1000,
                        help="test images (of the default split's 2,000)")
    parser.add_argument("--chips", type=int, default=5, help="evaluation chips per BER for the accuracy part")
    parser.add_argument("--bers", type=float, nargs="+", default=[0.01, 0.05])
    parser.add_argument("--n", type=int, default=5, help="perturbed models per EOPM step")
    parser.add_argument("--eopm-batch", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-compile", dest="compile", action="store_false", help="skip torch.compile")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.samples, args.chips, args.n = 3, 300, 3, 2
    set_threads(args.threads)
    device = resolve_device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    setup = SETUPS["vgg11"]
    base, _ = load_base_model(setup.base)
    generator, _ = load_generator(setup.generator_run, base=base)
    base, generator = frozen(base).to(device), generator.to(device).eval()
    memory_format = preferred_memory_format(base)
    test_set = fixed_subset(load_dataset("default", split="test"), args.samples)
    batches = load_batches(test_set, 500, device, memory_format)
    print(f"CPU: {cpu_description()}")
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads; shipped VGG11 "
          f"(full width) and its UNetS; median of {args.rounds} rounds")

    x128 = torch.cat([x for x, _ in batches])[:128].contiguous(memory_format=memory_format)
    print(f"\n{'time':<34}{'fp32 (ms)':>12}{'bf16 (ms)':>12}{'speed-up':>10}")

    def forward(precision: str, model: torch.nn.Module = base) -> Callable[[int], None]:
        def run(i: int) -> None:
            with torch.inference_mode(), autocast(precision, device):
                model(x128)
        return run

    report("forward, batch 128", interleaved({p: forward(p) for p in PRECISIONS}, args.rounds, sync))

    deployment, point = Deployment(base, bits=8), OperatingPoint.resolve(ber=args.bers[0])
    x, y = batches[0][0][:args.eopm_batch], batches[0][1][:args.eopm_batch]
    trainees = {p: copy.deepcopy(generator).train() for p in PRECISIONS}
    optimizers = {p: torch.optim.Adam(g.parameters(), lr=1e-3) for p, g in trainees.items()}

    def step(precision: str) -> Callable[[int], None]:
        def run(i: int) -> None:
            eopm_step(trainees[precision], optimizers[precision], [deployment], x, y, point=point,
                      chips=training_chips(0, 0, i, args.n), lam=5.0, precision=precision)
        return run

    def evaluation(precision: str) -> Callable[[int], None]:
        def run(i: int) -> None:
            chip_accuracies(deployment, point, evaluation_chips(1, first=i), [batches], precision=precision)
        return run

    with deployment.quantized():
        report(f"eopm step, batch {args.eopm_batch}, 1+{args.n} models",
               interleaved({p: step(p) for p in PRECISIONS}, args.rounds, sync))
        report(f"evaluation, {len(test_set)} images, 1 chip",
               interleaved({p: evaluation(p) for p in PRECISIONS}, args.rounds, sync))

    if args.compile:
        try:
            start = time.perf_counter()
            compiled = torch.compile(base)
            for p in PRECISIONS:
                forward(p, compiled)(0)
            print(f"torch.compile: compiling both took {time.perf_counter() - start:.1f} s")
            runs = {p: forward(p) for p in PRECISIONS}
            runs.update({f"{p} compiled": forward(p, compiled) for p in PRECISIONS})
            seconds = interleaved(runs, args.rounds, sync)
            for p in PRECISIONS:
                print(f"forward, batch 128, {p}: compiled {1e3 * seconds[f'{p} compiled']:.1f} ms, "
                      f"eager {1e3 * seconds[p]:.1f} ms: {seconds[p] / seconds[f'{p} compiled']:.2f}x")
        except Exception as err:  # no C++ compiler, an unsupported backend: report and go on
            print(f"torch.compile failed: {type(err).__name__}: {str(err).splitlines()[0]}")

    print(f"\naccuracy over {args.chips} evaluation chips, {len(test_set)} images (PA in %; agreement: "
          "same predicted class at bf16 as at fp32)")
    print(f"{'BER':<7}{'configuration':<16}{'PA fp32':>9}{'PA bf16':>9}{'bf16-fp32':>11}{'range':>17}"
          f"{'agreement':>11}")
    input_sets = {"base": batches, "with UNetS": transform(generator, batches)}
    labels = torch.cat([y for _, y in batches]).cpu()
    with deployment.quantized():
        for ber in args.bers:
            point = OperatingPoint.resolve(ber=ber)
            rows = {name: [] for name in input_sets}
            for chip in evaluation_chips(args.chips):
                with deployment.at(point, chip=chip) as model:
                    for name, inputs in input_sets.items():
                        exact, fast = (predictions(model, inputs, p) for p in PRECISIONS)
                        rows[name].append([100 * (exact == labels).float().mean().item(),
                                           100 * (fast == labels).float().mean().item(),
                                           (exact == fast).float().mean().item()])
            for name, values in rows.items():
                pa32, pa16, agree = np.array(values).T
                diff = pa16 - pa32
                print(f"{f'{100 * ber:g}%':<7}{name:<16}{pa32.mean():>9.2f}{pa16.mean():>9.2f}"
                      f"{diff.mean():>+11.2f}"
                      f"{f'[{diff.min():+.2f}, {diff.max():+.2f}]':>17}{100 * agree.mean():>10.2f}%")


if __name__ == "__main__":
    main()
