"""Benchmark: sramsim against two real fault-injection tools, pytorchfi 0.6.0 and mrfi 2.1.0.

All three put one chip's faults into the same model, at the same bit-error rate, with 8-bit weights,
in one run on one machine, and the time per chip and the ratios to sramsim are printed.

The model: neuralfuse's CIFAR ResNet18 (full width, 11.17M weights, random init), with its conv
and linear weights put on their 8-bit grid first (symmetric, per tensor, as a QAT export would
be), so that every tool sees the same 8-bit weights. BER: the 14nm technology's at 0.83 Vmin (1%).

What each tool does per chip (its semantics):

- **sramsim** (``Deployment(model, fault_model=...).at(voltage=0.83, chip=k)``, entered and left):
  faults are a property of the chip: every bit cell of the 512x64 arrays has a critical voltage, so
  a chip's faults are persistent (the same chip gives the same faults on every call) and nested
  across voltages. ``flip``: each faulty cell inverts its bit (BER = fraction of flipped bits);
  ``stuck-at`` (the default): it holds a random fixed value, so about half of them change the bit.
  Time: generating the chip's faults, writing the changed weights in place, and restoring them.
- **pytorchfi 0.6.0** (``fault_injection(model, 1, input_shape=[3, 32, 32], layer_types=[nn.Conv2d,
  nn.Linear])`` once, then ``declare_weight_fi(layer_num=, k=, dim1=, dim2=, dim3=, function=f)``
  per chip): given a list of weight positions, it deep-copies the model and calls ``f`` once per
  position in Python. ``f`` here flips the bits that sramsim's ``flip`` model flips on the same chip
  (so both write the same weights). Time: ``declare_weight_fi`` (the copy and the calls); drawing
  the faults is not counted.
- **mrfi 2.1.0** (``MRFI(model, EasyConfig)``: a weight fault injector with
  ``SymmericQuantization`` at 8 bits, ``RandomPositionByRate`` with ``rate = 8 x BER`` per weight and
  ``IntRandomBitFlip``): on every forward pass, hooks restore each weight from a copy, quantize it,
  flip one random bit of a Poisson number of random weights, and dequantize it. Faults are redrawn on
  every forward pass (not a chip), and the expected number of flipped bits equals the ``flip``
  model's. Time: an mrfi forward pass minus a plain forward pass of the same model (batch 1).

pytorchfi and mrfi are installed with ``pip install --no-deps`` (mrfi would pull in torchvision;
pytorchfi's wheel adds a top-level package named ``test``) into their own virtual environment,
``.cache/bench-venv``, which this script makes on first use and then reruns itself in; it reuses
this interpreter's packages (torch, numpy, scipy, pyyaml) through a ``.pth`` file, and this
checkout through another.

    python bench/bench_peers.py
    python bench/bench_peers.py --threads 2 --chips 3
"""
from __future__ import annotations

import argparse
import copy
import os
import site
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".cache" / "bench-venv"
PEERS = ("pytorchfi==0.6.0", "mrfi==2.1.0")


def venv_python() -> Path:
    """The bench environment's interpreter, made (with the peers installed) on first use."""
    python = VENV / "bin" / "python"
    if not (VENV / ".peers-installed").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        sites = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"],
                               check=True, capture_output=True, text=True).stdout.strip()
        Path(sites, "lowvolt-bench.pth").write_text(f"{ROOT}\n" + "".join(f"{p}\n" for p in site.getsitepackages()))
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", *PEERS], check=True)
        (VENV / ".peers-installed").write_text(" ".join(PEERS) + "\n")
    return python


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """(wall, CPU) seconds of one call of ``action``."""
    wall, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - wall, time.process_time() - cpu


def medians(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def run(args: argparse.Namespace) -> None:
    import numba
    import numpy as np
    import torch
    from mrfi import MRFI, EasyConfig
    from pytorchfi.core import fault_injection
    from torch import nn

    import characterization
    from neuralfuse.devices import set_threads
    from neuralfuse.models import create_model
    from sramsim import Deployment
    from sramsim.quant import dequantize, quantize

    ber = characterization.load(characterization.DEFAULT_TECH).ber(args.voltage)
    torch.manual_seed(0)
    model = create_model("resnet18").eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                module.weight.copy_(dequantize(*quantize(module.weight, 8)))
    print(f"torch {torch.__version__}, numba {numba.__version__}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; ResNet18 (11.17M 8-bit weights), V/Vmin {args.voltage} -> BER {ber:.4g}")

    ours = {name: Deployment(copy.deepcopy(model), bits=8, fault_model=name) for name in ("flip", "stuck-at")}
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    pfi = fault_injection(copy.deepcopy(model), 1, input_shape=[3, 32, 32],
                          layer_types=[nn.Conv2d, nn.Linear], use_cuda=False)
    mrfi_config = EasyConfig({"faultinject": [{
        "type": "weight", "name": ["weight"], "enabled": True,
        "quantization": {"method": "SymmericQuantization", "bit_width": 8, "dynamic_range": "auto"},
        "selector": {"method": "RandomPositionByRate", "poisson": True, "rate": 8 * ber},
        "error_mode": {"method": "IntRandomBitFlip", "bit_width": 8},
        "module_type": ["Conv2d", "Linear"]}]})
    mrfi_model = MRFI(copy.deepcopy(model), mrfi_config)
    plain = copy.deepcopy(model)
    x = torch.randn(1, 3, 32, 32)
    chips = iter(range(1000, 10**9))

    def pytorchfi_arguments(chip: int) -> dict:
        """declare_weight_fi's arguments for the weights sramsim's flip model changes on ``chip``."""
        deployment = ours["flip"]
        faults = deployment._faults(chip, deployment.point(voltage=args.voltage))
        lists = {key: [] for key in ("layer_num", "k", "dim1", "dim2", "dim3")}
        masks = []
        for t, layer in enumerate(layers):
            lo, hi = faults.bounds[t], faults.bounds[t + 1]
            idx = np.unravel_index(faults.index[lo:hi], layer.weight.shape)
            scale = float(quantize(layer.weight, 8)[1])
            lists["layer_num"] += [t] * (hi - lo)
            for key, dim in zip(("k", "dim1", "dim2", "dim3"), range(4)):
                lists[key] += idx[dim].tolist() if dim < len(idx) else [None] * (hi - lo)
            flips = (faults.value[lo:hi] ^ faults.clean[lo:hi]).astype(np.uint8).tolist()
            masks += [(m, scale) for m in flips]
        order = iter(masks)

        def flip_bits(weight: torch.Tensor, index: tuple) -> float:
            mask, scale = next(order)
            code = (round(weight[index].item() / scale) & 0xFF) ^ mask
            return (code - 256 if code >= 128 else code) * scale

        return {**lists, "function": flip_bits}

    def count_changed(net: nn.Module) -> int:
        """Weights of ``net``'s conv and linear layers that differ from the model's by more than
        a rounding error of the 8-bit grid."""
        pairs = [(a.weight, b.weight) for a, b in zip(net.modules(), model.modules())
                 if isinstance(a, (nn.Conv2d, nn.Linear))]
        return sum(int(((a - b).abs() > b.abs().max() / 1270).sum()) for a, b in pairs)

    def check_same_weights(corrupted: nn.Module, chip: int) -> None:
        """pytorchfi's corrupted model holds the weights sramsim's flip model gives on ``chip``."""
        deployed = ours["flip"].model
        with ours["flip"].at(voltage=args.voltage, chip=chip):
            for a, b in zip(corrupted.modules(), deployed.modules()):
                if isinstance(a, (nn.Conv2d, nn.Linear)) and not torch.equal(a.weight, b.weight):
                    raise AssertionError("pytorchfi and sramsim wrote different weights")

    def sramsim_chip(name: str) -> Callable[[], None]:
        def chip() -> None:
            with ours[name].at(voltage=args.voltage, chip=next(chips)):
                pass
        return chip

    def forward(net) -> Callable[[], None]:
        def call() -> None:
            with torch.no_grad():
                net(x)
        return call

    for threads in args.threads:
        set_threads(threads)
        result = {}
        for name in ("flip", "stuck-at"):
            result[f"sramsim {name}"] = medians([timed(sramsim_chip(name)) for _ in range(args.chips + 1)][1:])
        mrfi_runs, plain_runs = [], []
        for _ in range(args.chips + 1):   # interleaved; the first pair warms up
            mrfi_runs.append(timed(forward(mrfi_model)))
            plain_runs.append(timed(forward(plain)))
        (mw, mc), (pw, pc) = medians(mrfi_runs[1:]), medians(plain_runs[1:])
        result["mrfi"] = (mw - pw, mc - pc)
        print(f"\n{threads} thread(s): batch-1 forward pass {pw * 1e3:.1f} ms wall ({pc * 1e3:.1f} ms CPU) "
              f"plain, {mw * 1e3:.1f} ms wall ({mc * 1e3:.1f} ms CPU) with mrfi; mrfi changed "
              f"{count_changed(mrfi_model.model):,} weights in its last pass (flip model: "
              f"{int(8 * ber * sum(m.weight.numel() for m in layers)):,} bits expected)")
        pfi_runs = []
        for _ in range(args.pytorchfi_chips):
            chip = next(chips)
            kwargs = pytorchfi_arguments(chip)
            pfi_runs.append(timed(lambda: pfi.declare_weight_fi(**kwargs)))
        check_same_weights(pfi.corrupted_model, chip)
        result["pytorchfi"] = medians(pfi_runs)

        wall0, cpu0 = result["sramsim flip"]
        print(f"{threads} thread(s) (torch and numba); time per chip, median of {args.chips} "
              f"(pytorchfi: {args.pytorchfi_chips}); ratio to sramsim flip (wall, CPU):")
        for name, (wall, cpu) in result.items():
            print(f"  {name:18s} {wall * 1e3:10.1f} ms wall ({cpu * 1e3:10.1f} ms CPU)   "
                  f"{wall / wall0:7.1f}x {cpu / cpu0:7.1f}x")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}; numba threading layer "
          f"{numba.threading_layer()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voltage", type=float, default=0.83, help="supply voltage, V/Vmin")
    parser.add_argument("--chips", type=int, default=3, help="chips timed per tool (plus a warm-up)")
    parser.add_argument("--pytorchfi-chips", type=int, default=1, help="chips timed for pytorchfi (slow)")
    parser.add_argument("--threads", type=lambda s: [int(t) for t in s.split(",")], default=[1, 2],
                        help="comma-separated thread counts")
    args = parser.parse_args()
    if Path(sys.prefix).resolve() != VENV.resolve():
        python = venv_python()
        os.execv(python, [str(python), __file__, *sys.argv[1:]])
    run(args)


if __name__ == "__main__":
    main()
