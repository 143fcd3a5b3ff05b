"""Arithmetic precision (``--precision fp32|bf16|fp16``): accuracy, records, resumption, errors."""
from __future__ import annotations

import copy
import json

import pytest
import torch
from click.testing import CliRunner

from neuralfuse.checkpoint import load_base_model, load_generator, save_checkpoint
from neuralfuse.chips import training_chips
from neuralfuse.cli import main
from neuralfuse.eopm import TrainConfig, eopm_step, frozen, train
from neuralfuse.evaluation import evaluate
from neuralfuse.generators import create_generator
from neuralfuse.grid import GridSpecError, parse_spec
from neuralfuse.precision import autocast, check_precision
from neuralfuse.tradeoff import SweepError, sweep
from sramsim import Deployment, OperatingPoint
from tiny import fitted_model

CLASSES = 4
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

# bf16 keeps 8 significant bits: a deployed model's accuracies move by at most a few borderline
# images. Stated tolerance: CA and mean PA within 4 points (5 of 128 images), and at least 95% of
# the fp32 argmax decisions kept on the fault-free model.
ACCURACY_TOLERANCE = 4.0
MIN_AGREEMENT = 0.95


@pytest.fixture(scope="module")
def fitted():
    """A ResNet18 at width 1/4 fitted to 128 random 8x8 images, so its decisions have margins."""
    return fitted_model(0.25, images=128, steps=20, classes=CLASSES)


@pytest.fixture(scope="module")
def checkpoint(fitted, tmp_path_factory):
    return save_checkpoint(tmp_path_factory.mktemp("base") / "base.pt", fitted[0], arch="resnet18",
                           width=0.25, num_classes=CLASSES, bits=8)


def output_dtypes(model: torch.nn.Module) -> set[torch.dtype]:
    """The dtypes of ``model``'s convolution outputs from now on (a forward hook fills the set)."""
    seen: set[torch.dtype] = set()
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda module, args, out: seen.add(out.dtype))
    return seen


# --- the setting ---------------------------------------------------------------------------------

@pytest.mark.parametrize("call, message", [
    (lambda: check_precision("fp8"), "precision 'fp8' is not valid: use one of fp32, bf16, fp16"),
    (lambda: check_precision("fp16", "cpu"), "precision 'fp16' needs a CUDA device"),
    (lambda: check_precision("fp16", training=True), "'fp16' is for evaluation only"),
    (lambda: autocast("bf32", "cpu"), "precision 'bf32' is not valid"),
    (lambda: TrainConfig(generator="UNetS", ber=0.01, precision="fp16"), "train with bf16 or fp32"),
])
def test_bad_precisions_are_refused_with_what_is_allowed(call, message):
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


def test_autocast_runs_the_forward_in_bf16_and_fp32_as_before(fitted):
    model, data = fitted
    x = data.tensors[0][:8]
    with torch.inference_mode():
        reference = model(x)
        with autocast("fp32", "cpu"):
            same = model(x)
        with autocast("bf16", "cpu"):
            low = model(x)
    assert torch.equal(same, reference)
    assert low.dtype == torch.bfloat16 and not torch.equal(low.float(), reference)


# --- evaluation ----------------------------------------------------------------------------------

def test_bf16_evaluation_stays_within_tolerance_of_fp32(fitted):
    model, data = fitted
    point = OperatingPoint.resolve(ber=0.01)
    generator = create_generator("UNetS", input_shape=(3, 8, 8)).eval()
    results = {}
    for precision in ("fp32", "bf16"):
        dtypes = output_dtypes(model)
        results[precision] = evaluate(model, data, point=point, generator=generator, chips=3,
                                      batch_size=64, latency_repeats=1, precision=precision)
        assert dtypes == {torch.float32 if precision == "fp32" else torch.bfloat16}
    fp32, bf16 = results["fp32"], results["bf16"]
    assert fp32["precision"] == "fp32" and bf16["precision"] == "bf16"
    for side in ("without_nf", "with_nf"):
        assert bf16[side]["ca"] == pytest.approx(fp32[side]["ca"], abs=ACCURACY_TOLERANCE)
        assert bf16[side]["pa_mean"] == pytest.approx(fp32[side]["pa_mean"], abs=ACCURACY_TOLERANCE)
    assert fp32["without_nf"]["ca"] > 60  # fitted: a tolerance on a coin flip would say nothing
    with Deployment(model).quantized(), torch.inference_mode():
        x = data.tensors[0]
        exact = model(x).argmax(1)
        with autocast("bf16", "cpu"):
            fast = model(x).argmax(1)
    assert (exact == fast).float().mean() >= MIN_AGREEMENT


@pytest.fixture(scope="module")
def run_dir(fitted, tmp_path_factory):
    """A one-epoch EOPM run trained at bf16 through the fitted model."""
    model, data = fitted
    run = tmp_path_factory.mktemp("runs") / "bf16"
    config = TrainConfig(generator="UNetS", ber=0.02, n_chips=2, batch_size=16, epochs=1,
                         max_steps_per_epoch=2, val_size=16, val_chips=2, precision="bf16")
    train(run, config, copy.deepcopy(model), data, progress=False)
    return run


def test_a_run_records_its_precision_and_resumes_only_with_it(run_dir, fitted):
    model, data = fitted
    record = json.loads((run_dir / "config.json").read_text())
    assert record["config"]["precision"] == "bf16"
    assert load_generator(run_dir)[1]["precision"] == "bf16"
    other = TrainConfig(**{**record["config"], "precision": "fp32"})
    with pytest.raises(ValueError, match="config.precision: 'bf16' before, 'fp32' now"):
        train(run_dir, other, copy.deepcopy(model), data, progress=False)


def test_evaluation_json_records_the_precision_and_keeps_fp32_results_apart(run_dir, checkpoint, tmp_path):
    data_args = ["--base", str(checkpoint), "--run", str(run_dir), "--ber", "0.02",
                 "--chips", "2", "--samples", "40", "--latency-repeats", "1", "--no-progress",
                 "--device", "cpu"]
    for precision in ("bf16", "fp32"):
        result = CliRunner().invoke(main, ["evaluate", *data_args, "--precision", precision])
        assert result.exit_code == 0, result.output
        assert f"{precision} arithmetic" in result.output
    [bf16_path] = run_dir.glob("evaluation-ber0.02-*-bf16.json")  # fp32 names no precision
    [fp32_path] = set(run_dir.glob("evaluation-ber0.02-*.json")) - {bf16_path}
    assert fp32_path.name == bf16_path.name.replace("-bf16", "")
    bf16, fp32 = json.loads(bf16_path.read_text()), json.loads(fp32_path.read_text())
    assert (bf16["precision"], fp32["precision"]) == ("bf16", "fp32")
    compared = CliRunner().invoke(main, ["compare", str(run_dir)])
    assert compared.exit_code == 0 and "bf16" in compared.output and "fp32" in compared.output


# --- training ------------------------------------------------------------------------------------

def test_a_bf16_eopm_step_updates_the_generator_along_the_fp32_gradient(fitted):
    model, data = fitted
    base = frozen(copy.deepcopy(model))
    x, y = data.tensors[0][:16], data.tensors[1][:16]
    torch.manual_seed(1)
    generator = create_generator("UNetS", input_shape=(3, 8, 8)).train()
    point, chips = OperatingPoint.resolve(ber=0.02), training_chips(0, 0, 0, 2)
    grads, stats = {}, {}
    for precision in ("fp32", "bf16"):
        trained = copy.deepcopy(generator)
        optimizer = torch.optim.SGD(trained.parameters(), lr=0.1)
        dtypes = output_dtypes(base)
        stats[precision] = eopm_step(trained, optimizer, [Deployment(base)], x, y, chips=chips,
                                     point=point, lam=5.0, precision=precision)
        grads[precision] = torch.cat([p.grad.reshape(-1) for p in trained.parameters()])
        assert dtypes == {torch.float32 if precision == "fp32" else torch.bfloat16}
        moved = [not torch.equal(a, b) for a, b in zip(trained.parameters(), generator.parameters())]
        assert all(moved)
    cosine = torch.nn.functional.cosine_similarity(grads["fp32"], grads["bf16"], dim=0)
    assert cosine > 0.9 and grads["bf16"].dtype == torch.float32
    assert stats["bf16"].loss == pytest.approx(stats["fp32"].loss, rel=0.05)


def test_train_base_at_bf16_records_it_in_the_checkpoint(tmp_path):
    out = tmp_path / "base.pt"
    args = ["--model", "resnet18", "--width", "0.0625", "--batch-size", "32", "--limit-batches", "1",
            "--epochs", "1", "--precision", "bf16", "--no-progress", "-o", str(out)]
    result = CliRunner().invoke(main, ["train-base", *args])
    assert result.exit_code == 0, result.output
    meta = load_base_model(out)[1]
    assert meta["config"]["precision"] == "bf16" and "--precision bf16" in meta["command"]


# --- sweeps and grids ----------------------------------------------------------------------------

def test_a_sweep_records_its_precision_and_refuses_to_resume_with_another(fitted, tmp_path):
    model, data = fitted
    out = tmp_path / "sweep"
    table = sweep(model, data, (1.0, 0.8), chips=2, out_dir=out, precision="bf16")
    assert json.loads((out / "sweep.json").read_text())["precision"] == "bf16"
    assert table.pa_mean.notna().all()
    with pytest.raises(SweepError, match="precision: 'bf16' before, 'fp32' now"):
        sweep(model, data, (1.0, 0.8), chips=2, out_dir=out)


def test_grid_specs_take_a_precision_and_refuse_fp16(tmp_path):
    spec = parse_spec({"base": "b.pt", "train": {"precision": "bf16"}, "grid": {"generator": ["ConvS"],
                                                                              "ber": [0.01]}}, tmp_path)
    assert spec.runs[0].settings["precision"] == "bf16"
    with pytest.raises(GridSpecError, match="train with bf16 or fp32"):
        parse_spec({"base": "b.pt", "grid": {"generator": ["ConvS"], "ber": [0.01], "precision": ["fp16"]}})


# --- the command line ----------------------------------------------------------------------------

@pytest.mark.parametrize("command", [["train-base", "-o", "x.pt"], ["train", "--generator", "UNetS"],
                                     ["evaluate"], ["sweep", "--voltages", "1"], ["demo"]])
def test_a_bad_precision_is_a_one_line_cli_error(command, checkpoint):
    needs_base = command[0] in ("train", "evaluate", "sweep")
    args = [*command, *(["--base", str(checkpoint)] if needs_base else []), "--precision", "fp8"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert errors == ["Error: Invalid value for '--precision': 'fp8' is not one of 'fp32', 'bf16', 'fp16'."]


def test_fp16_on_the_cpu_is_a_usage_error_naming_bf16(checkpoint):
    result = CliRunner().invoke(main, ["evaluate", "--base", str(checkpoint), "--ber", "0.01", "--chips", "1",
                                       "--device", "cpu", "--precision", "fp16", "--no-progress"])
    assert result.exit_code == 2
    assert "precision 'fp16' needs a CUDA device" in result.output and "bf16" in result.output


def test_the_demo_records_its_precision(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "-o", str(out), "--no-progress", "--setup", "resnet18-w0.25",
                                       "--chips", "2", "--voltages", "1.0", "--samples", "100",
                                       "--precision", "bf16", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["precision"] == "bf16"
    assert json.loads((out / "sweep.json").read_text())["precision"] == "bf16"
    assert "bf16 arithmetic" in (out / "summary.txt").read_text()


# --- CUDA ----------------------------------------------------------------------------------------

@CUDA
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_evaluation_at_low_precision_stays_within_tolerance(fitted, precision):
    model, data = fitted
    point = OperatingPoint.resolve(ber=0.01)
    exact = evaluate(copy.deepcopy(model), data, point=point, chips=2, latency_repeats=1, device="cpu")
    fast = evaluate(copy.deepcopy(model), data, point=point, chips=2, latency_repeats=1, device="cuda",
                    precision=precision)
    assert fast["precision"] == precision
    for key in ("ca", "pa_mean"):
        assert fast["without_nf"][key] == pytest.approx(exact["without_nf"][key], abs=ACCURACY_TOLERANCE)


@CUDA
def test_cuda_bf16_eopm_step_updates_the_generator(fitted):
    model, data = fitted
    base = frozen(copy.deepcopy(model)).cuda()
    x, y = data.tensors[0][:16].cuda(), data.tensors[1][:16].cuda()
    generator = create_generator("UNetS", input_shape=(3, 8, 8)).train().cuda()
    before = copy.deepcopy(generator.state_dict())
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    stats = eopm_step(generator, optimizer, [Deployment(base)], x, y, chips=training_chips(0, 0, 0, 2),
                      point=OperatingPoint.resolve(ber=0.02), lam=5.0, precision="bf16")
    assert stats.loss == stats.loss  # not NaN
    assert any(not torch.equal(before[k], v) for k, v in generator.state_dict().items())
