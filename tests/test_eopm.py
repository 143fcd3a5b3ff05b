"""EOPM trainer: the loss and its gradient, cost per step, chip streams, run directory, resume."""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch.utils.data import TensorDataset

import characterization
from neuralfuse import eopm
from neuralfuse.checkpoint import CheckpointError, read_checkpoint, save_checkpoint, EOPM_TRAINING_STATE
from neuralfuse.chips import (TRAIN_SEED_BASE, VALIDATION_SEED_BASE, evaluation_chips, training_chips,
                              validation_chips)
from neuralfuse.cli import main
from neuralfuse.data import DatasetInfo, ImageDataset, holdout_split
from neuralfuse.checkpoint import load_generator, model_fingerprint
from neuralfuse.eopm import TrainConfig, base_split, eopm_step, frozen, train
from sramsim import OperatingPoint
from neuralfuse.generators import create_generator
from neuralfuse.models import create_model
from sramsim import Deployment, MemoryConfig, deploy

CLASSES = 4


def tiny_base(seed: int = 0) -> torch.nn.Module:
    """A ResNet18 with 1/16 of the channels (about 44k weights)."""
    torch.manual_seed(seed)
    return create_model("resnet18", num_classes=CLASSES, width=1 / 16).eval()


def tiny_data(n: int = 32, side: int = 8, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.rand(n, 3, side, side, generator=g) * 2 - 1,
                         torch.randint(0, CLASSES, (n,), generator=g))


def tiny_config(**changes) -> TrainConfig:
    settings = dict(generator="UNetS", ber=0.02, n_chips=2, batch_size=8, epochs=2, val_size=8,
                    val_chips=2, checkpoint_every=2)
    return TrainConfig.from_dict({**settings, **changes})   # memory fields may be given flat


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- chip streams ------------------------------------------------------------------------------

def test_training_chips_are_deterministic_fresh_and_disjoint_from_evaluation_chips():
    first = training_chips(seed=0, epoch=0, step=0, n=10)
    assert first == training_chips(seed=0, epoch=0, step=0, n=10)
    drawn = [set(training_chips(seed, epoch, step, 10)) for seed in (0, 1) for epoch in (0, 1)
             for step in range(20)]
    union = set().union(*drawn)
    assert len(union) == 10 * len(drawn)  # every step draws fresh chips
    assert min(union) >= TRAIN_SEED_BASE > max(evaluation_chips(1000))
    assert max(union) < 2**63
    assert evaluation_chips(3) == [0, 1, 2]


def test_validation_chips_are_a_stream_of_their_own():
    validation = validation_chips(1000)
    assert validation[:2] == [VALIDATION_SEED_BASE, VALIDATION_SEED_BASE + 1]
    assert max(evaluation_chips(1000)) < VALIDATION_SEED_BASE <= min(validation)
    assert max(validation) < TRAIN_SEED_BASE  # below every training chip


@pytest.mark.parametrize("call", [lambda: training_chips(-1, 0, 0, 1), lambda: training_chips(0, 0, 0.5, 1),
                                  lambda: evaluation_chips(0), lambda: validation_chips(True)])
def test_chip_streams_reject_bad_arguments(call):
    with pytest.raises(ValueError, match="not valid"):
        call()


# --- one step ----------------------------------------------------------------------------------

@pytest.fixture
def step_setup():
    base = frozen(tiny_base())
    torch.manual_seed(1)
    generator = create_generator("UNetS").train()
    x, y = tiny_data(8).tensors
    return base, generator, x, y


def test_step_gradient_is_the_gradient_of_the_eopm_loss(step_setup):
    base, generator, x, y = step_setup
    point, chips, lam = OperatingPoint.resolve(ber=0.03), training_chips(0, 0, 0, 3), 5.0
    reference = copy.deepcopy(generator)
    z = reference(x)
    clean = deploy(base, ber=0.0, chip=0)
    loss = F.cross_entropy(clean(z), y) + lam * torch.stack(
        [F.cross_entropy(deploy(base, ber=point.ber, chip=c)(z), y) for c in chips]).mean()
    loss.backward()

    optimizer = torch.optim.SGD(generator.parameters(), lr=0.0)  # keeps the gradients readable
    stats = eopm_step(generator, optimizer, [Deployment(base)], x, y, chips=chips, point=point, lam=lam)
    assert stats.loss == pytest.approx(loss.item(), rel=1e-5)
    for (name, p), q in zip(generator.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_step_runs_the_generator_once_and_the_base_once_per_model(step_setup):
    base, generator, x, y = step_setup
    calls = {"generator": 0, "base": 0}
    generator.register_forward_hook(lambda *_: calls.__setitem__("generator", calls["generator"] + 1))
    base.register_forward_hook(lambda *_: calls.__setitem__("base", calls["base"] + 1))
    before = copy.deepcopy(base.state_dict())
    generator_before = copy.deepcopy(generator.state_dict())
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-3)
    eopm_step(generator, optimizer, [Deployment(base)], x, y, chips=training_chips(0, 0, 0, 5),
              point=OperatingPoint.resolve(ber=0.01), lam=5.0)
    assert calls == {"generator": 1, "base": 1 + 5}  # one clean pass, N perturbed ones
    assert states_equal(base.state_dict(), before)  # faults cleared, nothing trained
    assert all(p.grad is None for p in base.parameters())
    assert not states_equal(generator.state_dict(), generator_before)


def test_loss_decreases_on_a_tiny_problem(step_setup):
    _, generator, x, y = step_setup
    torch.manual_seed(0)
    nn = torch.nn
    base = frozen(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                                nn.Linear(8 * 8 * 8, CLASSES)))
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-2)
    deployment, point = Deployment(base), OperatingPoint.resolve(ber=0.01)
    with deployment.quantized():
        losses = [eopm_step(generator, optimizer, [deployment], x, y, chips=training_chips(0, 0, s, 2),
                            point=point, lam=5.0).loss for s in range(25)]
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3])


# --- training runs -----------------------------------------------------------------------------

def test_train_writes_a_complete_run_directory(tmp_path):
    base, run = tiny_base(), tmp_path / "run"
    epochs_seen = []
    path = train(run, tiny_config(), base, tiny_data(), provenance={"dataset": "tiny", "command": "cmd"},
                 progress=False, on_epoch=lambda metrics, where: epochs_seen.append((len(metrics), where)))
    assert path == run / "generator.pt"
    assert epochs_seen == [(1, run), (2, run)]   # the callback sees the metrics after every epoch
    record = json.loads((run / "config.json").read_text())
    assert record["resolved_ber"] == 0.02 and record["config"]["lam"] == 5.0
    assert record["command"] == "cmd" and record["provenance"] == {"dataset": "tiny"}
    assert record["train_samples"] == 24 and record["val_samples"] == 8
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics.epoch) == [1, 2]
    assert {"loss", "clean_loss", "perturbed_loss", "val_ca", "val_pa_mean", "val_pa_std"} <= set(metrics)
    assert np.allclose(metrics.val_rp, metrics.val_pa_mean - metrics.val_base_pa_mean)
    assert metrics.val_base_pa_mean.nunique() == 1  # the base model alone does not change
    assert not (run / "learning_curve.png").exists()   # drawn only by a callback (the CLI's)
    generator, meta = load_generator(run, base=base)
    assert meta["generator"] == "UNetS" and meta["ber"] == 0.02 and meta["memory"] == MemoryConfig().to_dict()
    assert meta["input_shape"] == [3, 8, 8] and not generator.training


def script_validation(monkeypatch, val_pa: list[float]) -> None:
    """Make each epoch's validation report the next of ``val_pa`` as its PA."""
    scripted_pa = iter(val_pa)

    def scripted(generator, *args, **kwargs):
        pa = next(scripted_pa)
        return {"val_ca": 80.0, "val_pa_mean": pa, "val_pa_std": 1.0, "val_base_ca": 85.0,
                "val_base_pa_mean": 40.0, "val_rp": pa - 40.0}

    monkeypatch.setattr(eopm, "validate", scripted)


def test_the_run_keeps_every_epoch_and_its_generator_is_the_best_on_validation(tmp_path, monkeypatch):
    script_validation(monkeypatch, [50.0, 70.0, 60.0])  # epoch 2 validates best
    run = tmp_path / "run"
    train(run, tiny_config(epochs=3, max_steps_per_epoch=1), tiny_base(), tiny_data(), progress=False)
    kept = [read_checkpoint(run / "epochs" / f"generator-epoch00{e}.pt", "neuralfuse.generator")
            for e in (1, 2, 3)]
    assert [k["epoch"] for k in kept] == [1, 2, 3] and kept[1]["metrics"]["val_pa_mean"] == 70.0
    assert not states_equal(kept[1]["state_dict"], kept[2]["state_dict"])  # training moved on
    chosen = read_checkpoint(run / "generator.pt", "neuralfuse.generator")
    assert states_equal(chosen["state_dict"], kept[1]["state_dict"])
    assert chosen["epoch"] == 2 and chosen["selection"].startswith("epoch 2 of 3")


def test_patience_stops_a_run_once_validation_pa_stalls_and_resuming_with_more_epochs_is_allowed(
        tmp_path, monkeypatch):
    script_validation(monkeypatch, [50.0, 70.0, 60.0, 65.0, 80.0])  # epochs 3 and 4 do not beat epoch 2
    run = tmp_path / "run"
    train(run, tiny_config(epochs=10, max_steps_per_epoch=1, patience=2), tiny_base(), tiny_data(),
          progress=False)
    assert list(pd.read_csv(run / "metrics.csv").epoch) == [1, 2, 3, 4]
    assert read_checkpoint(run / "generator.pt", "neuralfuse.generator")["epoch"] == 2
    # patience is a stopping rule, not part of the run: a larger one continues the same run
    train(run, tiny_config(epochs=5, max_steps_per_epoch=1, patience=3), tiny_base(), tiny_data(),
          progress=False)
    assert list(pd.read_csv(run / "metrics.csv").epoch) == [1, 2, 3, 4, 5]
    assert read_checkpoint(run / "generator.pt", "neuralfuse.generator")["epoch"] == 5


def test_stalled_counts_epochs_since_the_best_validation_pa():
    rows = [{"epoch": 1, "val_pa_mean": 60.0}, {"epoch": 2, "val_pa_mean": 65.0},
            {"epoch": 3, "val_pa_mean": 64.0}, {"epoch": 4, "val_pa_mean": 65.0}]
    assert eopm.stalled(rows, 2) and not eopm.stalled(rows, 3)
    assert not eopm.stalled(rows, None) and not eopm.stalled([], 1)
    with pytest.raises(ValueError, match="patience"):
        tiny_config(patience=0)


def test_select_epoch_prefers_validation_pa_then_the_earlier_epoch():
    rows = [{"epoch": 1, "val_pa_mean": 60.0}, {"epoch": 2, "val_pa_mean": 65.0},
            {"epoch": 3, "val_pa_mean": 65.0}, {"epoch": 4, "val_pa_mean": float("nan")}]
    assert eopm.select_epoch(rows) == 2
    assert eopm.select_epoch([{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.0}]) == 2  # no validation


def test_training_at_a_voltage_records_the_characterized_ber(tmp_path):
    config = tiny_config(ber=None, voltage=0.83, epochs=1, max_steps_per_epoch=1, val_size=0)
    train(tmp_path / "run", config, tiny_base(), tiny_data(), progress=False)
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["resolved_ber"] == pytest.approx(float(characterization.load(config.memory.tech).ber(0.83)))


def test_the_uip_baseline_trains_through_the_same_trainer(tmp_path):
    config = tiny_config(generator="UIP", epochs=1, max_steps_per_epoch=2, val_size=0)
    train(tmp_path / "run", config, tiny_base(), tiny_data(), progress=False)
    generator, meta = load_generator(tmp_path / "run")
    assert meta["generator"] == "UIP" and generator.input_shape == (3, 8, 8)
    assert generator.net.perturbation.abs().sum() > 0  # it moved away from the identity


def test_interrupted_training_resumes_to_the_same_generator(tmp_path, monkeypatch):
    data, config = tiny_data(), tiny_config(augment=True, lr_schedule="cosine")
    train(tmp_path / "whole", config, tiny_base(), data, progress=False)

    real_step, calls = eopm.eopm_step, []

    def crash_on_sixth(*args, **kwargs):  # epoch 2 (of 3 steps), third step: after its step-2 checkpoint
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(eopm, "eopm_step", crash_on_sixth)
    with pytest.raises(KeyboardInterrupt):
        train(tmp_path / "cut", config, tiny_base(), data, progress=False)
    state = read_checkpoint(tmp_path / "cut" / "checkpoint.pt", EOPM_TRAINING_STATE)
    assert (state["epoch"], state["step"]) == (1, 2)
    monkeypatch.setattr(eopm, "eopm_step", real_step)
    train(tmp_path / "cut", config, tiny_base(), data, progress=False)

    whole = read_checkpoint(tmp_path / "whole" / "generator.pt", "neuralfuse.generator")
    cut = read_checkpoint(tmp_path / "cut" / "generator.pt", "neuralfuse.generator")
    assert states_equal(whole["state_dict"], cut["state_dict"])
    assert (tmp_path / "whole" / "metrics.csv").read_text() == (tmp_path / "cut" / "metrics.csv").read_text()


def test_a_finished_run_continues_when_given_more_epochs(tmp_path):
    data = tiny_data()
    short = dict(max_steps_per_epoch=2, val_size=0)
    train(tmp_path / "long", tiny_config(epochs=2, **short), tiny_base(), data, progress=False)
    train(tmp_path / "short", tiny_config(epochs=1, **short), tiny_base(), data, progress=False)
    train(tmp_path / "short", tiny_config(epochs=2, **short), tiny_base(), data, progress=False)
    long = read_checkpoint(tmp_path / "long" / "generator.pt", "neuralfuse.generator")
    extended = read_checkpoint(tmp_path / "short" / "generator.pt", "neuralfuse.generator")
    assert states_equal(long["state_dict"], extended["state_dict"])


def spy_on_steps(monkeypatch, capture) -> list:
    """Patch eopm_step so every step first appends ``capture(generator, optimizer, x)`` to the list returned."""
    seen, real_step = [], eopm.eopm_step

    def spy(generator, optimizer, deployments, x, *args, **kwargs):
        seen.append(capture(generator, optimizer, x))
        return real_step(generator, optimizer, deployments, x, *args, **kwargs)

    monkeypatch.setattr(eopm, "eopm_step", spy)
    return seen


def learning_rates_used(tmp_path, monkeypatch, config) -> list[float]:
    """The learning rate at every optimizer step of a run."""
    seen = spy_on_steps(monkeypatch, lambda generator, optimizer, x: optimizer.param_groups[0]["lr"])
    train(tmp_path, config, tiny_base(), tiny_data(), progress=False)
    return seen


def test_cosine_schedule_decays_the_learning_rate_over_all_epochs(tmp_path, monkeypatch):
    config = tiny_config(epochs=2, max_steps_per_epoch=3, val_size=0, lr=0.01, lr_schedule="cosine")
    rates = learning_rates_used(tmp_path / "run", monkeypatch, config)
    assert rates == pytest.approx([0.005 * (1 + np.cos(np.pi * t / 6)) for t in range(6)])
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert metrics.lr.tolist() == pytest.approx([rates[2], rates[5]])
    constant = learning_rates_used(tmp_path / "constant", monkeypatch, tiny_config(
        epochs=1, max_steps_per_epoch=3, val_size=0, lr=0.01))
    assert constant == [0.01] * 3
    with pytest.raises(ValueError, match="epochs: 2 before, 3 now"):  # the schedule would change
        train(tmp_path / "run", tiny_config(**{**dataclasses.asdict(config), "epochs": 3}), tiny_base(),
              tiny_data(), progress=False)
    with pytest.raises(ValueError, match="lr_schedule='step' is not valid: use one of constant, cosine"):
        tiny_config(lr_schedule="step")


def test_fine_tuning_starts_from_the_given_generator(tmp_path, monkeypatch):
    short = dict(epochs=1, max_steps_per_epoch=2, val_size=0)
    train(tmp_path / "first", tiny_config(**short), tiny_base(), tiny_data(), progress=False)
    first, _ = load_generator(tmp_path / "first")
    starts = spy_on_steps(monkeypatch, lambda generator, optimizer, x: copy.deepcopy(generator.state_dict()))
    train(tmp_path / "tuned", tiny_config(**short, seed=1), tiny_base(), tiny_data(), init=first,
          progress=False)
    assert states_equal(starts[0], first.state_dict())
    assert json.loads((tmp_path / "tuned" / "config.json").read_text())["init_fingerprint"] \
        == model_fingerprint(first)
    with pytest.raises(ValueError, match="init_fingerprint"):  # resuming without it is another run
        train(tmp_path / "tuned", tiny_config(**short, seed=1), tiny_base(), tiny_data(), progress=False)
    with pytest.raises(CheckpointError, match="initial generator for UNetL: weights do not fit"):
        train(tmp_path / "other", tiny_config(**{**short, "generator": "UNetL"}), tiny_base(), tiny_data(),
              init=first, progress=False)


def test_a_run_recorded_before_a_setting_existed_resumes_with_its_default(tmp_path):
    data, short = tiny_data(), dict(max_steps_per_epoch=1, val_size=0)
    train(tmp_path / "run", tiny_config(epochs=1, **short), tiny_base(), data, progress=False)
    record_file = tmp_path / "run" / "config.json"
    record = json.loads(record_file.read_text())
    del record["config"]["augment"]  # as written by a version without augmentation
    record_file.write_text(json.dumps(record))
    train(tmp_path / "run", tiny_config(epochs=2, **short), tiny_base(), data, progress=False)
    with pytest.raises(ValueError, match="augment: False before, True now"):
        train(tmp_path / "run", tiny_config(epochs=3, augment=True, **short), tiny_base(), data,
              progress=False)


def test_a_run_trains_under_its_memory_config_records_it_and_resumes_only_under_it(tmp_path, monkeypatch):
    robust, short = MemoryConfig(storage="robust", fault_model="flip"), dict(max_steps_per_epoch=1, val_size=0)
    used, step = [], eopm.eopm_step

    def spy(generator, optimizer, deployments, *args, **kwargs):
        used.append(deployments[0].memory)
        return step(generator, optimizer, deployments, *args, **kwargs)

    monkeypatch.setattr(eopm, "eopm_step", spy)
    train(tmp_path / "run", tiny_config(epochs=1, memory=robust, **short), tiny_base(), tiny_data(), progress=False)
    assert used == [robust]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["memory"] == robust.to_dict()
    assert load_generator(tmp_path / "run")[1]["memory"] == robust.to_dict()
    with pytest.raises(ValueError, match="memory.storage: 'robust' before, 'symmetric' now"):
        train(tmp_path / "run", tiny_config(epochs=2, fault_model="flip", **short), tiny_base(), tiny_data(),
              progress=False)
    with pytest.raises(ValueError, match="as memory= or as bits, not both"):
        tiny_config(memory=robust, bits=4)


def batches_seen(tmp_path, monkeypatch, data, **changes) -> list[torch.Tensor]:
    """The inputs eopm_step receives during a two-step run on ``data``."""
    seen = spy_on_steps(monkeypatch, lambda generator, optimizer, x: x.clone())
    train(tmp_path / str(changes), tiny_config(epochs=1, max_steps_per_epoch=2, val_size=0, **changes),
          tiny_base(), data, progress=False)
    return seen


def crop_and_flip(original: torch.Tensor, seen: torch.Tensor) -> tuple[int, int, bool] | None:
    """The (row, column, flipped) crop of ``original`` padded by 4 with -1 that equals ``seen``."""
    side = original.shape[-1]
    padded = F.pad(original, (4,) * 4, value=-1.0)
    for row in range(9):
        for col in range(9):
            crop = padded[:, row:row + side, col:col + side]
            for flipped in (False, True):
                if torch.equal(crop.flip(-1) if flipped else crop, seen):
                    return row, col, flipped
    return None


@pytest.mark.parametrize("hflip", [True, False])
def test_augmentation_trains_on_shifted_copies_flipped_only_where_allowed(tmp_path, monkeypatch, hflip):
    raw = tiny_data(n=40)
    images = ((raw.tensors[0] + 1) * 127.5).round().to(torch.uint8)
    info = DatasetInfo(name="tiny", classes=tuple("abcd"), input_shape=(3, 8, 8), hflip=hflip)
    data = ImageDataset(images, raw.tensors[1], info)
    plain = batches_seen(tmp_path, monkeypatch, data)
    augmented = batches_seen(tmp_path, monkeypatch, data, augment=True)
    assert batches_seen(tmp_path / "again", monkeypatch, data, augment=True)[0].equal(augmented[0])
    found = [crop_and_flip(o, a) for p, q in zip(plain, augmented) for o, a in zip(p, q)]
    assert None not in found  # every training input is a crop (and maybe a mirror) of its sample
    assert any((row, col) != (4, 4) for row, col, _ in found)
    assert any(flipped for *_, flipped in found) == hflip


def test_resuming_with_other_settings_is_refused(tmp_path):
    data = tiny_data()
    config = tiny_config(epochs=1, max_steps_per_epoch=1, val_size=0)
    train(tmp_path / "run", config, tiny_base(), data, progress=False)
    with pytest.raises(ValueError, match=r"lam: 5\.0 before, 1\.0 now"):
        train(tmp_path / "run", tiny_config(epochs=1, max_steps_per_epoch=1, val_size=0, lam=1.0),
              tiny_base(), data, progress=False)
    with pytest.raises(ValueError, match="base_fingerprint"):
        train(tmp_path / "run", config, tiny_base(seed=1), data, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a training run directory"):
        train(tmp_path / "other", config, tiny_base(), data, progress=False)


def test_restricted_access_runs_the_target_forward_only(tmp_path):
    target, surrogates = tiny_base(0), [tiny_base(1), tiny_base(2)]
    grad_modes = {"target": [], "surrogates": []}
    target.register_forward_hook(lambda *_: grad_modes["target"].append(torch.is_grad_enabled()))
    for s in surrogates:
        s.register_forward_hook(lambda *_: grad_modes["surrogates"].append(torch.is_grad_enabled()))
    target_state = copy.deepcopy(target.state_dict())
    config = tiny_config(epochs=1, max_steps_per_epoch=2, n_chips=4)
    train(tmp_path / "run", config, target, tiny_data(), surrogates=surrogates, progress=False)
    assert grad_modes["target"] and not any(grad_modes["target"])  # validation only, no graph
    assert grad_modes["surrogates"] == [True] * 2 * (2 + 4)  # per step: 2 clean + 4 perturbed
    assert states_equal(target.state_dict(), target_state)
    _, meta = load_generator(tmp_path / "run", base=target)
    assert len(meta["surrogate_fingerprints"]) == 2


def test_train_rejects_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="exactly one of"):
        train(tmp_path / "a", tiny_config(ber=None), tiny_base(), tiny_data(), progress=False)
    with pytest.raises(ValueError, match="n_chips=1 is fewer than the 2 surrogates"):
        train(tmp_path / "b", tiny_config(n_chips=1), tiny_base(), tiny_data(),
              surrogates=[tiny_base(1), tiny_base(2)], progress=False)
    with pytest.raises(ValueError, match="unknown fault model 'bitflip'"):
        tiny_config(fault_model="bitflip")
    with pytest.raises(ValueError, match="lam=-1"):
        tiny_config(lam=-1)
    with pytest.raises(ValueError, match="train_subset=100 is more than the 24 training samples"):
        train(tmp_path / "c", tiny_config(train_subset=100), tiny_base(), tiny_data(), progress=False)


def test_held_out_images_never_train_and_validate_on_validation_chips(tmp_path, monkeypatch):
    data = tiny_data()
    seen = spy_on_steps(monkeypatch, lambda generator, optimizer, x: x.clone())
    validated, real_validate = [], eopm.validate

    def spy_validate(generator, target, point, batches, chips, *precision):
        validated.append((torch.cat([x for x, _ in batches]), chips))
        return real_validate(generator, target, point, batches, chips, *precision)

    monkeypatch.setattr(eopm, "validate", spy_validate)
    config = tiny_config(epochs=1, val_size=8, split_seed=5, val_images=6, val_chips=2)
    train(tmp_path / "run", config, tiny_base(), data, progress=False)
    train_idx, val_idx = holdout_split(len(data), 8, seed=5)
    images = data.tensors[0]
    trained = torch.cat(seen)
    assert sorted(_rows_of(images, trained)) == train_idx.tolist()  # each training image, once
    (val_images, chips), = validated
    assert set(_rows_of(images, val_images)) < set(val_idx.tolist()) and len(val_images) == 6
    assert chips == validation_chips(2)
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["split"] == {"function": "holdout_split", "val_size": 8, "seed": 5}
    assert record["train_samples"] == 24 and record["val_samples"] == 6
    with pytest.raises(ValueError, match="val_images=9 is more than the 8 held-out images"):
        train(tmp_path / "more", tiny_config(val_images=9), tiny_base(), data, progress=False)


def _rows_of(images: torch.Tensor, found: torch.Tensor) -> list[int]:
    """The row of ``images`` equal to each of ``found``."""
    return [int((images == x).flatten(1).all(1).nonzero()) for x in found]


def test_the_base_models_split_is_the_generators(tmp_path):
    meta = {"dataset": "default", "split": {"val_size": 100, "seed": 3}}
    assert base_split(meta, "default") == {"val_size": 100, "split_seed": 3}
    assert base_split(meta, "default", val_size=100, split_seed=3) == {"val_size": 100, "split_seed": 3}
    assert base_split(meta, "cifar10", val_size=20) == {"val_size": 20, "split_seed": 0}  # another dataset
    assert base_split({"dataset": "default", "split": {"val_size": 0, "seed": 0}}, "default") == \
        {"val_size": eopm.DEFAULT_VAL_SIZE, "split_seed": 0}
    with pytest.raises(ValueError, match="val_size=50 differs from the base model's split"):
        base_split(meta, "default", val_size=50)

    base_path = tmp_path / "base.pt"
    save_checkpoint(base_path, create_model("resnet18", width=1 / 16), arch="resnet18", width=1 / 16,
                    num_classes=10, bits=8, dataset="default", split={"val_size": 40, "seed": 2})
    args = ["train", "--base", str(base_path), "--generator", "ConvS", "--ber", "0.02", "--chips-per-step", "1",
            "--batch-size", "4", "--epochs", "1", "--max-steps-per-epoch", "1", "--dataset", "default",
            "--val-images", "4", "--val-chips", "1", "--no-progress", "-o", str(tmp_path / "run")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["split"] == {"function": "holdout_split", "val_size": 40, "seed": 2}
    result = CliRunner().invoke(main, [*args[:-1], str(tmp_path / "other"), "--split-seed", "1"])
    assert result.exit_code == 2 and "split_seed=1 differs from the base model's split" in result.output
    assert "Traceback" not in result.output


def test_a_run_recorded_before_the_split_was_cannot_resume_but_loads(tmp_path):
    config = tiny_config(epochs=1, max_steps_per_epoch=1, val_size=0)
    train(tmp_path / "run", config, tiny_base(), tiny_data(), progress=False)
    record_file = tmp_path / "run" / "config.json"
    record = json.loads(record_file.read_text())
    del record["split"]  # as written by a version that split the images otherwise
    record_file.write_text(json.dumps(record))
    with pytest.raises(ValueError, match="older neuralfuse.*cannot resume"):
        train(tmp_path / "run", tiny_config(epochs=2, max_steps_per_epoch=1, val_size=0), tiny_base(),
              tiny_data(), progress=False)
    generator, meta = load_generator(tmp_path / "run")
    assert meta["generator"] == "UNetS" and not generator.training


def test_load_generator_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_generator(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no generator.pt .*not a training run"):
        load_generator(tmp_path)
    base = tiny_base()
    train(tmp_path / "run", tiny_config(epochs=1, max_steps_per_epoch=1, val_size=0), base, tiny_data(),
          progress=False)
    with pytest.raises(CheckpointError, match="trained for another base model"):
        load_generator(tmp_path / "run", base=tiny_base(seed=5))
    (tmp_path / "run" / "generator.pt").unlink()
    with pytest.raises(FileNotFoundError, match="training has not finished"):
        load_generator(tmp_path / "run")


# --- the command line, killed with SIGKILL and rerun ------------------------------------------

def cli_train(base_path, out):
    return [str(Path(sys.executable).parent / "neuralfuse"), "train", "--base", str(base_path),
            "--generator", "UNetS", "--ber", "0.02", "--chips-per-step", "2", "--batch-size", "8", "--epochs", "2",
            "--dataset", "default", "--train-subset", "32", "--val-size", "8", "--val-chips", "1",
            "--checkpoint-every", "1", "--no-progress", "-o", str(out)]


@pytest.mark.slow
def test_kill_9_during_training_then_rerun_gives_the_same_generator(tmp_path):
    base_path = tmp_path / "base.pt"
    save_checkpoint(base_path, create_model("resnet18", width=1 / 16), arch="resnet18", width=1 / 16,
                    num_classes=10, bits=8)
    subprocess.run(cli_train(base_path, tmp_path / "whole"), check=True, capture_output=True)

    command = cli_train(base_path, tmp_path / "cut")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "cut" / "checkpoint.pt"
    while not checkpoint.exists() and process.poll() is None:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "cut" / "generator.pt").exists(), "the run finished before it was killed"
    subprocess.run(command, check=True, capture_output=True)

    whole = read_checkpoint(tmp_path / "whole" / "generator.pt", "neuralfuse.generator")
    cut = read_checkpoint(tmp_path / "cut" / "generator.pt", "neuralfuse.generator")
    assert states_equal(whole["state_dict"], cut["state_dict"])


def test_training_does_not_import_plotting_and_the_cli_draws_the_learning_curve(tmp_path):
    code = "import sys, neuralfuse.eopm; print(sorted({'matplotlib', 'neuralfuse.plots', 'neuralfuse.tradeoff'} & set(sys.modules)))"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert imported.stdout.strip() == "[]"
    metrics = pd.DataFrame({"epoch": [1, 2], "loss": [2.0, 1.0], "clean_loss": [1.0, 0.5],
                            "perturbed_loss": [2.0, 1.5], "val_pa_mean": [40.0, 50.0]})
    from neuralfuse.plots import write_learning_curve

    assert write_learning_curve(metrics, tmp_path) == tmp_path / "learning_curve.png"
    assert (tmp_path / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
