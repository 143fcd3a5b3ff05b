"""``--device`` everywhere, thread settings, and the device-independent fault path.

The CUDA tests run wherever torch sees a GPU and are skipped otherwise.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner
from torch import nn
from torch.utils.data import TensorDataset

from neuralfuse.checkpoint import save_checkpoint
from neuralfuse.cli import main
from neuralfuse.devices import module_device, resolve_device, set_threads
from neuralfuse.checkpoint import load_generator
from neuralfuse.eopm import TrainConfig, train
from neuralfuse.evaluation import evaluate
from neuralfuse.models import create_model
from neuralfuse.tradeoff import sweep
from sramsim import Deployment, MemoryConfig, OperatingPoint
from sramsim._writes import WeightWriter

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device")


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return create_model("resnet18", num_classes=10, width=1 / 16).eval()


def small_data(n: int = 40) -> TensorDataset:
    g = torch.Generator().manual_seed(1)
    return TensorDataset(torch.rand(n, 3, 8, 8, generator=g) * 2 - 1, torch.randint(0, 10, (n,), generator=g))


# --- resolving --------------------------------------------------------------------------------

def test_resolve_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert resolve_device("auto") == resolve_device(None) == torch.device("cuda" if CUDA else "cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("spec", ["tpu", "cpu:1", "cuda:x", "", "auto:0"])
def test_resolve_device_rejects_unknown_names(spec):
    with pytest.raises(ValueError, match="use auto, cpu, cuda or cuda:N"):
        resolve_device(spec)


def test_resolve_device_rejects_a_missing_gpu():
    missing = f"cuda:{torch.cuda.device_count() if CUDA else 0}"
    with pytest.raises(ValueError, match=f"{missing}' is not available"):
        resolve_device(missing)


@pytest.mark.parametrize("command", ["train-base", "train", "evaluate", "sweep", "demo"])
@pytest.mark.parametrize("spec, message", [("tpu", "use auto, cpu, cuda or cuda:N"),
                                           ("cuda:7", "is not available")])
def test_cli_device_bad_value_is_a_one_line_error(command, spec, message):
    if spec == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    result = CliRunner().invoke(main, [command, "--device", spec])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "--device" in errors[0] and message in errors[0], result.output
    assert "Traceback" not in result.output


# --- threads ----------------------------------------------------------------------------------

def test_set_threads_sets_torch_numba_and_omp_and_numba_does_not_reset_torch():
    """In a fresh process (the thread pools start once): after set_threads(n), asking numba for its
    count (which starts its threading layer) leaves torch's count at n."""
    code = """
import os, numba, torch
from neuralfuse.devices import set_threads
out = []
for n in (2, 1):
    set_threads(n)
    out.append([numba.get_num_threads(), torch.get_num_threads(), os.environ["OMP_NUM_THREADS"]])
print(out)
"""
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "[[2, 2, '2'], [1, 1, '1']]", done.stderr


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_set_threads_rejects_bad_counts(n):
    with pytest.raises(ValueError, match="threads="):
        set_threads(n)


# --- the path CUDA takes, exercised on the CPU ------------------------------------------------

def test_torch_write_path_matches_the_numpy_path():
    """Parameters off the CPU are written with torch ops (put_, mul, copy_) instead of NumPy views;
    forcing that path on the CPU gives the same faulty weights and the same bit-exact restore."""
    reference, generic = small_model(), small_model()
    original = {k: v.clone() for k, v in generic.state_dict().items()}
    fast, slow = Deployment(reference), Deployment(generic)
    for tensor in slow._writer.tensors:
        tensor.array, tensor.batched = None, False  # what a CUDA parameter has
    slow._writer = WeightWriter(slow._writer.tensors)
    for chip in (0, 5):
        with fast.at(ber=0.02, chip=chip) as a, slow.at(ber=0.02, chip=chip) as b:
            for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
                assert torch.equal(p, q), name
    for name, value in generic.state_dict().items():
        assert torch.equal(value.view(torch.uint8) if value.is_floating_point() else value,
                           original[name].view(torch.uint8) if value.is_floating_point() else original[name])


def test_evaluate_sweep_and_train_take_a_device(tmp_path):
    """device="cpu" runs (the models are moved there) and gives what the default gives."""
    point = OperatingPoint.resolve(ber=0.02)
    plain = evaluate(small_model(), small_data(), point=point, chips=2, latency_repeats=1)
    placed = evaluate(small_model(), small_data(), point=point, chips=2, latency_repeats=1, device="cpu")
    assert placed["without_nf"] == plain["without_nf"]
    table = sweep(small_model(), small_data(), (1.0, 0.85), chips=2, device=torch.device("cpu"))
    assert table.pa_mean.notna().all()
    config = TrainConfig(generator="ConvS", ber=0.02, n_chips=2, epochs=1, batch_size=10,
                         max_steps_per_epoch=2, val_size=10, val_chips=1)
    train(tmp_path / "run", config, small_model(), small_data(), progress=False, device="cpu")
    assert module_device(load_generator(tmp_path / "run")[0]) == torch.device("cpu")


def test_cli_evaluate_device_cpu_matches_auto_on_a_cpu_machine(tmp_path):
    if CUDA:
        pytest.skip("auto means CUDA here")
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, small_model(), arch="resnet18", width=1 / 16, num_classes=10, bits=8)
    results = []
    for spec in ("cpu", "auto"):
        out = tmp_path / f"{spec}.json"
        result = CliRunner().invoke(main, ["evaluate", "--base", str(path), "--ber", "0.02", "--chips", "2",
                                           "--samples", "50", "--latency-repeats", "1", "--no-progress",
                                           "--device", spec, "--json", str(out)])
        assert result.exit_code == 0, result.output
        results.append(json.loads(out.read_text())["without_nf"])
    assert results[0] == results[1]


# --- CUDA -------------------------------------------------------------------------------------

@needs_cuda
def test_cuda_faults_match_cpu_and_restore_is_bit_exact():
    """Fault maps are drawn on the CPU from the chip seed and only the changed weights are written
    to the device: the same positions and stuck values as on the CPU."""
    cpu_model, gpu_model = small_model(), small_model().cuda()
    before = {k: v.clone() for k, v in gpu_model.state_dict().items()}
    on_cpu, on_gpu = Deployment(cpu_model), Deployment(gpu_model)
    for chip in (0, 3):
        assert on_gpu.report(ber=0.02, chip=chip) == on_cpu.report(ber=0.02, chip=chip)
        with on_cpu.at(ber=0.02, chip=chip) as a, on_gpu.at(ber=0.02, chip=chip) as b:
            for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
                assert torch.equal(p, q.cpu()), name
    with on_gpu.quantized(), on_gpu.at(ber=0.05, chip=1):
        pass
    for name, value in gpu_model.state_dict().items():
        assert value.is_cuda and torch.equal(value, before[name]), name


@needs_cuda
def test_cuda_evaluate_sweep_and_train(tmp_path):
    point = OperatingPoint.resolve(ber=0.02)
    on_cpu = evaluate(small_model(), small_data(), point=point, chips=2, latency_repeats=1, device="cpu")
    on_gpu = evaluate(small_model(), small_data(), point=point, chips=2, latency_repeats=1, device="cuda")
    assert on_gpu["without_nf"]["ca"] == pytest.approx(on_cpu["without_nf"]["ca"], abs=5.0)
    table = sweep(small_model(), small_data(), (1.0, 0.85), chips=2, device="cuda")
    assert table.pa_mean.notna().all()
    config = TrainConfig(generator="ConvS", ber=0.02, n_chips=2, epochs=1, batch_size=10,
                         max_steps_per_epoch=2, val_size=10, val_chips=1)
    train(tmp_path / "run", config, small_model(), small_data(), progress=False, device="cuda")
    assert (tmp_path / "run" / "generator.pt").is_file()


def test_sweep_work_to_another_device_leaves_the_original_in_place():
    """What a Ray task does with the shared work (here to the 'meta' device, which every torch has)."""
    from neuralfuse.tradeoff import SweepWork

    batches = [(torch.zeros(2, 3, 8, 8), torch.zeros(2, dtype=torch.long))]
    work = SweepWork(small_model(), {"base": batches}, MemoryConfig())
    assert work.to("cpu") is work
    moved = work.to("meta")
    assert module_device(moved.base).type == "meta" and moved.input_sets["base"][0][0].is_meta
    assert module_device(work.base) == torch.device("cpu") and not work.input_sets["base"][0][0].is_meta
