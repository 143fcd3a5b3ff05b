"""Base-model training: augmentation, the train-base command, and exact resumption."""
from __future__ import annotations

import dataclasses
import shlex
import signal
import subprocess
import sys

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from neuralfuse.augment import CROP_PADDING, augment
from neuralfuse.checkpoint import load_base_model, model_fingerprint
from neuralfuse.cli import main
from neuralfuse.train_base import (
    BaseTrainer, TrainBaseConfig, epoch_plan, metrics_path, partial_path,
)
from sramsim import MemoryConfig

TINY = ["--model", "resnet18", "--width", "0.0625", "--batch-size", "32", "--limit-batches", "1"]
TINY_CONFIG = TrainBaseConfig(model="resnet18", width=0.0625, batch_size=32, limit_batches=3,
                              epochs=2, seed=5)
# GroupNorm, clipping and bit-error training from the first step (with per-epoch validation chips)
ROBUST_CONFIG = dataclasses.replace(TINY_CONFIG, model="vgg11", norm="group", clip=0.05, randbet_ber=0.01,
                                    randbet_threshold=10.0, val_size=64)


class Interrupt(Exception):
    """Raised from a training callback to simulate a killed run."""


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_augment_matches_a_per_image_crop_and_flip():
    torch.manual_seed(0)
    x = torch.rand(6, 3, 8, 8) * 2 - 1
    offsets, flips = torch.randint(0, 2 * CROP_PADDING + 1, (6, 2)), torch.rand(6) < 0.5
    out = augment(x, offsets, flips)
    padded = torch.nn.functional.pad(x, (CROP_PADDING,) * 4, value=-1.0)
    for i, ((r, c), f) in enumerate(zip(offsets.tolist(), flips.tolist())):
        crop = padded[i, :, r:r + 8, c:c + 8]
        assert torch.equal(out[i], crop.flip(-1) if f else crop)
    centre = torch.full((6, 2), CROP_PADDING)
    assert torch.equal(augment(x, centre, torch.zeros(6, dtype=torch.bool)), x)


def test_epoch_plan_depends_only_on_seed_and_epoch():
    order, offsets, flips = epoch_plan(100, seed=3, epoch=2, flip=True)
    again = epoch_plan(100, seed=3, epoch=2, flip=True)
    assert all(torch.equal(a, b) for a, b in zip((order, offsets, flips), again))
    assert sorted(order.tolist()) == list(range(100))
    assert not torch.equal(order, epoch_plan(100, seed=3, epoch=3, flip=True)[0])
    assert not torch.equal(order, epoch_plan(100, seed=4, epoch=2, flip=True)[0])
    assert int(offsets.min()) >= 0 and int(offsets.max()) <= 2 * CROP_PADDING
    assert 20 < int(flips.sum()) < 80
    assert not epoch_plan(100, seed=3, epoch=2, flip=False)[2].any()


@pytest.mark.parametrize("field, value", [("model", "alexnet"), ("width", 0), ("epochs", 1.5),
                                          ("bits", 1), ("label_smoothing", 1.0), ("seed", -1)])
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=f"{field}={value!r}"):
        TrainBaseConfig.from_dict({field: value})   # bits: a field of the memory config, given flat


def test_train_base_command_writes_a_loadable_qat_model(tmp_path):
    out = tmp_path / "runs" / "base.pt"
    args = [*TINY, "--epochs", "1", "--seed", "1", "--val-size", "100", "-o", str(out)]
    result = CliRunner().invoke(main, ["train-base", *args, "--no-progress"])
    assert result.exit_code == 2 and "folder" in result.output   # no folder made up from a typo
    (tmp_path / "runs").mkdir()
    result = CliRunner().invoke(main, ["train-base", *args, "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "clean test accuracy" in result.output
    model, meta = load_base_model(out, expect={"arch": "resnet18", "dataset": "default"})
    assert (meta["width"], meta["num_classes"], meta["memory"]["bits"], meta["epoch"]) == (0.0625, 10, 8, 1)
    assert shlex.split(meta["command"])[:2] == ["neuralfuse", "train-base"]
    rerun = CliRunner().invoke(main, shlex.split(meta["command"])[1:] + ["--no-progress"])
    assert rerun.exit_code == 0, rerun.output
    assert same_weights(load_base_model(out)[0], model)  # the recorded command reproduces it
    csv = pd.read_csv(metrics_path(out))
    assert list(csv.epoch) == [1] and csv.val_acc.iloc[0] == pytest.approx(meta["val_acc"])
    assert meta["split"] == {"val_size": 100, "seed": 0} and 0 <= meta["test_acc"] <= 1
    assert sorted(p.name for p in out.parent.iterdir()) == ["base.metrics.csv", "base.pt"]


@pytest.mark.parametrize("config", [TINY_CONFIG, ROBUST_CONFIG], ids=["plain", "robust"])
def test_interrupted_run_resumes_to_exactly_the_uninterrupted_weights(tmp_path, config):
    reference = BaseTrainer(config, tmp_path / "ref.pt", progress=False).run()
    expected = load_base_model(tmp_path / "ref.pt")[0]

    def interrupt(epoch: int, step: int, loss: float) -> None:
        if (epoch, step) == (1, 1):
            raise Interrupt

    out = tmp_path / "resumed.pt"
    with pytest.raises(Interrupt):
        BaseTrainer(config, out, progress=False, checkpoint_every=0).run(interrupt)
    assert partial_path(out).exists() and not out.exists()
    resumed = BaseTrainer(config, out, progress=False)
    assert (resumed.position["epoch"], resumed.position["step"]) == (1, 1)
    meta = resumed.run()
    assert same_weights(load_base_model(out)[0], expected)
    drop_time = [{k: v for k, v in m.items() if k != "seconds"} for m in meta["metrics"]]
    assert drop_time == [{k: v for k, v in m.items() if k != "seconds"} for m in reference["metrics"]]
    assert not partial_path(out).exists()


def interrupted_after_one_step(out) -> None:
    """Leave ``out.partial`` of TINY_CONFIG as a run killed after its first step leaves it."""
    def interrupt(epoch: int, step: int, loss: float) -> None:
        if step == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        BaseTrainer(TINY_CONFIG, out, progress=False, checkpoint_every=0).run(interrupt)


def test_resume_with_other_arguments_is_refused(tmp_path):
    out = tmp_path / "base.pt"
    interrupted_after_one_step(out)
    args = [*TINY, "--epochs", "2", "--seed", "5", "-o", str(out)]
    result = CliRunner().invoke(main, ["train-base", *args])
    assert result.exit_code == 2
    assert "limit_batches: 3 before, 1 now" in result.output
    assert "Traceback" not in result.output
    assert partial_path(out).exists() and not out.exists()


def test_a_partial_state_saved_before_memory_configs_resumes_under_its_flat_settings(tmp_path):
    out = tmp_path / "base.pt"
    interrupted_after_one_step(out)
    state = torch.load(partial_path(out), weights_only=True)
    memory = state["config"].pop("memory")   # as saved before memory configs: flat bits and storage
    state["config"].update(bits=memory["bits"], storage=memory["storage"])
    torch.save(state, partial_path(out))
    assert BaseTrainer(TINY_CONFIG, out, progress=False).position["step"] == 1
    with pytest.raises(ValueError, match="memory.bits: 8 before, 6 now"):
        BaseTrainer(dataclasses.replace(TINY_CONFIG, memory=MemoryConfig(bits=6)), out, progress=False)


@pytest.mark.parametrize("args, message", [
    (["--model", "alexnet"], "model='alexnet' is unknown"),
    (["--dataset", "no-such-set"], "no-such-set"),
    (["--bits", "9"], "--bits"),
])
def test_bad_arguments_fail_in_one_line_without_output(tmp_path, args, message):
    out = tmp_path / "base.pt"
    result = CliRunner().invoke(main, ["train-base", *args, "-o", str(out)])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_validation_images_are_held_out_of_training():
    trainer = BaseTrainer(dataclasses.replace(TINY_CONFIG, val_size=300), "unused.pt", progress=False)
    assert (len(trainer.x_train), len(trainer.x_val)) == (9700, 300)
    train_rows = {row.numpy().tobytes() for row in trainer.x_train.flatten(1)}
    assert not any(row.numpy().tobytes() in train_rows for row in trainer.x_val.flatten(1))


TRAINING_STEP = """
from neuralfuse.train_base import TrainBaseConfig, train_base
config = TrainBaseConfig(model="resnet18", width={width}, batch_size=16, limit_batches=2, epochs=1)
train_base(config, {out!r}, progress=False)
"""


@pytest.mark.parametrize("width", [0.0625, 0.125])
def test_a_training_step_does_not_crash_the_process(tmp_path, width):
    # oneDNN has died natively (SIGSEGV/SIGABRT) on 4-channel channels-last convolutions on some
    # AMD CPUs; a crash in a subprocess is a failing test here, not a lost pytest worker.
    code = TRAINING_STEP.format(width=width, out=str(tmp_path / "base.pt"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if done.returncode < 0:
        pytest.fail(f"training at width {width} killed by {signal.Signals(-done.returncode).name}:\n"
                    f"{done.stderr[-2000:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "base.pt").exists()


def test_train_base_compact_saves_integers_that_load_as_the_trained_weights(tmp_path):
    args = [*TINY, "--epochs", "1", "--seed", "2", "--no-progress"]
    for name, extra in (("full.pt", []), ("compact.pt", ["--compact"])):
        result = CliRunner().invoke(main, ["train-base", *args, *extra, "-o", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    assert (tmp_path / "compact.pt").stat().st_size < 0.5 * (tmp_path / "full.pt").stat().st_size
    full, compact = load_base_model(tmp_path / "full.pt")[0], load_base_model(tmp_path / "compact.pt")[0]
    assert model_fingerprint(compact) == model_fingerprint(full)   # bit for bit
