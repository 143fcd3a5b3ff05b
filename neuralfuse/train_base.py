"""Train a base model with quantization-aware training; resumable, seeded, exactly reproducible.

    config = TrainBaseConfig(model="resnet18", width=0.25, dataset="default", epochs=30)
    meta = train_base(config, "base.pt")      # writes base.pt and base.metrics.csv

Recipe: SGD (momentum 0.9, Nesterov, weight decay 5e-4), a one-cycle learning-rate schedule
peaking at ``lr × batch_size / 128``, optional label smoothing, 8-bit fake-quantized weights
(:mod:`neuralfuse.qat`), random crop (4-pixel padding) and, where the dataset allows it,
horizontal flips; forward passes at ``precision`` (fp32, or bf16 autocast with the loss on float32
logits: :mod:`neuralfuse.precision`). With ``val_size > 0`` that many training images are held out
(:func:`neuralfuse.data.holdout_split`, recorded in the checkpoint) and the validation accuracy is
measured after every epoch; the test split is evaluated once, at the end.

How the weights are stored is one :class:`sramsim.MemoryConfig` (``memory``): its bit width is
the QAT's, and random bit-error training deploys the weights as it says; the checkpoint records it
as ``"memory": {...}`` (checkpoints written before hold a flat ``bits``), and the generators and
evaluations of this model inherit it.

Robustness to weight bit errors (Stutz et al., MLSys 2021; see docs/protections.md): ``norm="group"``
builds the model with GroupNorm (:mod:`neuralfuse.models.norm`), ``clip=wmax`` clamps every stored
weight to [-wmax, wmax] after each optimizer step (:mod:`neuralfuse.clipping`), and
``randbet_ber=p`` adds random bit-error training at bit-error rate p (:mod:`neuralfuse.randbet`),
logging per epoch the perturbed loss, the fraction of steps it was on and, with a validation
split, the accuracy on the first :data:`RANDBET_VAL_CHIPS` validation chips at p (``val_pa``).

Fine-tuning: ``init_base`` starts from the weights of a model this command saved before (same
architecture, width and normalization), e.g. bit-error training of a clipped model; the schedule is
this run's own (a lower ``lr`` suits it), and the checkpoint records the initial model's fingerprint.

Reproducibility: the weights are initialised from ``seed`` (or ``init_base``); the sample order and augmentation of
epoch e depend only on (seed, e), drawn with NumPy's platform-independent PCG64. While training,
the full state (model, optimizer, schedule, position, running metrics) is saved to
``<out>.partial`` after every epoch and every ``checkpoint_every`` seconds; rerunning the same
configuration resumes from it and ends with exactly the weights of an uninterrupted run. A
different configuration is refused. At the end the QAT parametrizations are removed (weights left
on their quantization grid), the model is saved to ``out`` and the partial file is deleted.
"""
from __future__ import annotations

import dataclasses
import math
import os
import random
import shlex
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from characterization.atomic import atomic_path
from characterization.validation import check_scalar
from neuralfuse.augment import augment, augmentation_plan
from neuralfuse.checkpoint import (
    BASE_TRAINING_STATE, atomic_save, load_base_model, make_payload, model_fingerprint,
    read_checkpoint, save_checkpoint,
)
from neuralfuse.clipping import check_clip, clip_stored_weights
from neuralfuse.data import holdout_split, load_dataset
from neuralfuse.devices import module_device
from neuralfuse.memory_format import preferred_memory_format
from neuralfuse.models import create_model, list_models
from neuralfuse.precision import DEFAULT_PRECISION, autocast, check_precision
from neuralfuse.models.norm import check_norm
from neuralfuse.qat import enable_qat, export_quantized
from neuralfuse.randbet import RandBET, check_randbet
from neuralfuse.runs import record_differences
from sramsim.faults import MAX_SEED
from sramsim.memory import MemoryConfig, split_memory

REFERENCE_BATCH = 128  # ``lr`` is the peak learning rate at this batch size
EVAL_BATCH = 500
RANDBET_VAL_CHIPS = 3  # validation chips of the per-epoch accuracy under bit errors


class ResumeError(ValueError):
    """A partial training state exists for the output but was made with other arguments."""


@dataclasses.dataclass(frozen=True)
class TrainBaseConfig:
    """Everything that determines a base-model training run (and must match to resume one)."""

    model: str = "resnet18"
    width: float = 0.25
    dataset: str = "default"
    data_root: str | None = None
    image_size: int | None = None  # side of a 'folder' dataset's square images
    epochs: int = 30
    batch_size: int = 128
    lr: float = 0.1
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    memory: MemoryConfig = dataclasses.field(default_factory=MemoryConfig)  # bits: the QAT's
    seed: int = 0
    val_size: int = 0  # training images held out for validation (the same split later trains generators)
    split_seed: int = 0
    limit_batches: int | None = None  # train on at most this many batches per epoch (smoke runs)
    precision: str = DEFAULT_PRECISION  # arithmetic of the passes: fp32 or bf16 (neuralfuse.precision)
    norm: str = "batch"  # "group": GroupNorm with scale 1 + a' (neuralfuse.models.norm)
    clip: float | None = None  # clamp stored weights to [-clip, clip] after every step
    randbet_ber: float | None = None  # random bit-error training at this BER (None: off)
    randbet_threshold: float = 1.75  # ... once the clean loss of a batch is below this
    randbet_grad_clip: float = 0.05  # element-wise bound of the perturbed gradients
    init_base: str | None = None  # start from this base model's weights (fine-tuning) instead of random

    def __post_init__(self) -> None:
        if isinstance(self.memory, Mapping):
            object.__setattr__(self, "memory", MemoryConfig.from_dict(self.memory))
        if not isinstance(self.memory, MemoryConfig):
            raise TypeError(f"memory must be a MemoryConfig or its dict, got {type(self.memory).__name__}")
        check_precision(self.precision, training=True)
        known = {name.casefold(): name for name in list_models()}
        if not isinstance(self.model, str) or self.model.casefold() not in known:
            raise ValueError(f"model={self.model!r} is unknown: choose one of {', '.join(known.values())}")
        object.__setattr__(self, "model", known[self.model.casefold()])
        for name in ("width", "lr"):
            value = check_scalar(getattr(self, name), name, float, min_val=0, max_val=math.inf,
                                 include_boundaries="neither", allowed="a positive number")
            object.__setattr__(self, name, float(value))
        check_scalar(self.val_size, "val_size", int, min_val=0)
        for name in ("epochs", "batch_size", "limit_batches"):
            if getattr(self, name) is not None or name != "limit_batches":
                check_scalar(getattr(self, name), name, int, min_val=1)
        check_scalar(self.weight_decay, "weight_decay", float, min_val=0)
        check_scalar(self.label_smoothing, "label_smoothing", float, min_val=0, max_val=1,
                     include_boundaries="left")
        for name in ("seed", "split_seed"):
            check_scalar(getattr(self, name), name, int, min_val=0, max_val=MAX_SEED,
                         include_boundaries="left", allowed="an integer in [0, 2**63)")
        check_norm(self.norm)
        if self.clip is not None:
            object.__setattr__(self, "clip", check_clip(self.clip))
        check_randbet(self.randbet_ber, self.randbet_threshold, self.randbet_grad_clip)

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> TrainBaseConfig:
        """A config from settings that give the memory config as ``memory`` or as flat fields
        (``bits``, ``storage``, ...: a partial state saved before memory configs)."""
        memory, rest = split_memory(settings)
        return cls(**rest, memory=memory)

    def command(self, out: str | os.PathLike) -> str:
        """The ``neuralfuse train-base`` command line that runs this configuration."""
        args = ["neuralfuse", "train-base"]
        settings = {**{f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "memory"},
                    **self.memory.to_dict()}
        for name, value in settings.items():
            if value is not None:
                args += [f"--{name.replace('_', '-')}", str(value)]
        return shlex.join([*args, "-o", str(out)])


def epoch_plan(n: int, seed: int, epoch: int, flip: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample order, crop offsets (n×2, in [0, 2·pad]) and flip flags of one epoch, from (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n)
    return (torch.from_numpy(order), *augmentation_plan(rng, n, flip))


@torch.no_grad()
def loss_and_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                      memory_format: torch.memory_format = torch.contiguous_format,
                      precision: str = DEFAULT_PRECISION) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` in eval mode on (x, y), batch by batch on the
    model's device in ``memory_format``, at ``precision``."""
    model.eval()
    device = module_device(model)
    loss, correct = 0.0, 0
    for i in range(0, len(x), EVAL_BATCH):
        xb = x[i:i + EVAL_BATCH].to(device).contiguous(memory_format=memory_format)
        yb = y[i:i + EVAL_BATCH].to(device)
        with autocast(precision, device):
            logits = model(xb).float()
        loss += F.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    return loss / len(x), correct / len(x)


def partial_path(out: str | os.PathLike) -> Path:
    """Where the resumable training state of a run writing ``out`` lives: ``<out>.partial``."""
    return Path(str(out) + ".partial")


def metrics_path(out: str | os.PathLike) -> Path:
    """The per-epoch metrics CSV written next to ``out``: ``<out stem>.metrics.csv``."""
    return Path(out).with_suffix(".metrics.csv")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _load_initial_weights(model: nn.Module, config: TrainBaseConfig, num_classes: int) -> str:
    """Set ``model``'s weights to those of the base model ``config.init_base`` (which must have the
    same architecture, width, normalization and classes); return that model's fingerprint."""
    expect = {"arch": config.model, "width": config.width, "norm": config.norm, "num_classes": num_classes}
    init, _ = load_base_model(config.init_base, expect=expect)
    model.load_state_dict(init.state_dict())
    return model_fingerprint(init)


class BaseTrainer:
    """One training run writing ``out``.

    The constructor does everything that can fail on bad input (loading the data, building the
    model, reading and checking ``<out>.partial``) before anything is written; :meth:`run` trains.
    """

    def __init__(self, config: TrainBaseConfig, out: str | os.PathLike, *, progress: bool = True,
                 checkpoint_every: float = 300.0, device: torch.device | str = "cpu",
                 compact: bool = False) -> None:
        self.config, self.out, self.progress, self.compact = config, Path(out), progress, compact
        self.device = torch.device(device)
        check_precision(config.precision, self.device, training=True)
        self.checkpoint_every = checkpoint_every
        self.state_path = partial_path(out)
        train_set = load_dataset(config.dataset, config.data_root, split="train",
                                 image_size=config.image_size)
        train_idx, val_idx = holdout_split(len(train_set), config.val_size, config.split_seed)
        self.x_train, self.y_train = train_set.subset(train_idx).tensors()
        self.x_val, self.y_val = train_set.subset(val_idx).tensors()
        self.test_set = load_dataset(config.dataset, config.data_root, split="test",
                                     image_size=config.image_size)
        self.num_classes, self.flip = train_set.info.num_classes, train_set.info.hflip

        _seed_everything(config.seed)
        model = create_model(config.model, num_classes=self.num_classes, width=config.width,
                             norm=config.norm)
        # channels-last where it is safe and faster (see neuralfuse.memory_format); the saved model
        # is contiguous again.
        self.memory_format = preferred_memory_format(model)
        self.init_fingerprint = None
        if config.init_base is not None:
            self.init_fingerprint = _load_initial_weights(model, config, self.num_classes)
        self.model = enable_qat(model.to(self.device, memory_format=self.memory_format), config.memory.bits)
        self.randbet = None
        if config.randbet_ber is not None:
            shadow = create_model(config.model, num_classes=self.num_classes, width=config.width,
                                  norm=config.norm).to(self.device, memory_format=self.memory_format)
            self.randbet = RandBET(self.model, shadow, ber=config.randbet_ber, seed=config.seed,
                                   threshold=config.randbet_threshold,
                                   grad_clip=config.randbet_grad_clip, memory=config.memory,
                                   precision=config.precision)
        self.steps = max(len(self.x_train) // config.batch_size, 1)
        if config.limit_batches is not None:
            self.steps = min(self.steps, config.limit_batches)
        peak_lr = config.lr * config.batch_size / REFERENCE_BATCH
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=peak_lr, momentum=0.9,
                                         nesterov=True, weight_decay=config.weight_decay)
        self.schedule = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=peak_lr, total_steps=config.epochs * self.steps)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        self.position = self._new_epoch(0)
        self.metrics: list[dict[str, Any]] = []
        if self.state_path.exists():
            self._resume()
        self._last_save = time.monotonic()

    @staticmethod
    def _new_epoch(epoch: int) -> dict[str, Any]:
        """Where training stands: epoch, next step, and the epoch's running sums."""
        return {"epoch": epoch, "step": 0, "loss_sum": 0.0, "correct": 0, "seen": 0, "seconds": 0.0,
                "perturbed_loss_sum": 0.0, "perturbed_seen": 0, "randbet_steps": 0}

    def _resume(self) -> None:
        saved = read_checkpoint(self.state_path, BASE_TRAINING_STATE)
        current = dataclasses.asdict(self.config)
        # a setting the partial state lacks (saved before it existed) counts as its default
        memory, settings = split_memory(saved["config"])
        before = {**dataclasses.asdict(TrainBaseConfig()), **settings, "memory": memory.to_dict()}
        changes = record_differences({k: before[k] for k in current}, current)
        if changes:
            raise ResumeError(f"{self.state_path} holds a run with other settings ({'; '.join(changes)}): "
                              f"rerun with the original arguments to resume, or delete it to start over")
        self.model.load_state_dict(saved["state_dict"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.schedule.load_state_dict(saved["schedule"])
        self.position = {**self._new_epoch(0), **saved["position"]}
        self.metrics = list(saved["metrics"])

    def _save_state(self) -> None:
        meta = {"config": dataclasses.asdict(self.config), "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(), "position": dict(self.position),
                "metrics": self.metrics}
        atomic_save(make_payload(BASE_TRAINING_STATE, self.model.state_dict(), meta), self.state_path)
        self._last_save = time.monotonic()

    def _train_epoch(self, callback: Callable[[int, int, float], None] | None) -> None:
        """Train from the current position to the end of its epoch."""
        cfg, pos = self.config, self.position
        epoch, batch = pos["epoch"], cfg.batch_size
        order, offsets, flips = epoch_plan(len(self.x_train), cfg.seed, epoch, self.flip)
        started = time.monotonic() - pos["seconds"]
        self.model.train()
        bar = tqdm(range(pos["step"], self.steps), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   total=self.steps, initial=pos["step"], disable=not self.progress, leave=False)
        for step in bar:
            idx = order[step * batch:(step + 1) * batch]
            x = augment(self.x_train[idx], offsets[idx], flips[idx]).to(self.device)
            y = self.y_train[idx].to(self.device)
            with autocast(cfg.precision, self.device):
                logits = self.model(x.contiguous(memory_format=self.memory_format)).float()
            loss = self.criterion(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.randbet is not None:
                perturbed = self.randbet.step(x.contiguous(memory_format=self.memory_format), y,
                                              loss.item(), self.criterion, epoch, step)
                if perturbed is not None:
                    pos.update(perturbed_loss_sum=pos["perturbed_loss_sum"] + perturbed * len(idx),
                               perturbed_seen=pos["perturbed_seen"] + len(idx),
                               randbet_steps=pos["randbet_steps"] + 1)
            self.optimizer.step()
            if cfg.clip is not None:
                clip_stored_weights(self.model, cfg.clip)
            self.schedule.step()
            pos.update(step=step + 1, loss_sum=pos["loss_sum"] + loss.item() * len(idx),
                       correct=pos["correct"] + (logits.argmax(1) == y).sum().item(),
                       seen=pos["seen"] + len(idx), seconds=time.monotonic() - started)
            bar.set_postfix(loss=f"{pos['loss_sum'] / pos['seen']:.3f}",
                            acc=f"{pos['correct'] / pos['seen']:.3f}")
            if callback is not None:
                callback(epoch, step, loss.item())
            if step + 1 < self.steps and time.monotonic() - self._last_save >= self.checkpoint_every:
                self._save_state()
        row = {"epoch": epoch + 1, "lr": self.schedule.get_last_lr()[0],
               "train_loss": pos["loss_sum"] / pos["seen"], "train_acc": pos["correct"] / pos["seen"]}
        if len(self.y_val):
            row["val_loss"], row["val_acc"] = self._evaluate(self.x_val, self.y_val)
        if self.randbet is not None:
            row.update(self._randbet_metrics())
        self.metrics.append({**row, "seconds": time.monotonic() - started})

    def _evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        return loss_and_accuracy(self.model, x, y, self.memory_format, self.config.precision)

    def _randbet_metrics(self) -> dict[str, float | None]:
        """The epoch's perturbed loss, fraction of steps with bit errors on and, with a validation
        split, the mean accuracy on the first RANDBET_VAL_CHIPS validation chips at the BER."""
        pos = self.position
        row = {"perturbed_loss": pos["perturbed_loss_sum"] / pos["perturbed_seen"]
               if pos["perturbed_seen"] else None,
               "randbet_on": pos["randbet_steps"] / self.steps}
        if len(self.y_val):
            accuracies = self.randbet.validation_accuracies(
                lambda m: loss_and_accuracy(m, self.x_val, self.y_val, self.memory_format)[1],
                RANDBET_VAL_CHIPS)
            row["val_pa"] = sum(accuracies) / len(accuracies)
        return row

    def run(self, callback: Callable[[int, int, float], None] | None = None) -> dict[str, Any]:
        """Train to the end, save the exported model to ``out``; return the checkpoint metadata.

        ``callback(epoch, step, loss)`` runs after every optimizer step.
        """
        cfg = self.config
        self.out.parent.mkdir(parents=True, exist_ok=True)
        while self.position["epoch"] < cfg.epochs:
            self._train_epoch(callback)
            self.position = self._new_epoch(self.position["epoch"] + 1)
            self._save_state()
            with atomic_path(metrics_path(self.out)) as tmp:
                pd.DataFrame(self.metrics).to_csv(tmp, index=False, float_format="%.6g")
            if self.progress:
                m = self.metrics[-1]
                val = f", validation acc {m['val_acc']:.2%}" if "val_acc" in m else ""
                if "randbet_on" in m:
                    val += f", bit errors on in {m['randbet_on']:.0%} of steps"
                if "val_pa" in m:
                    val += f", validation PA {m['val_pa']:.2%} at BER {cfg.randbet_ber:g}"
                tqdm.write(f"epoch {m['epoch']}/{cfg.epochs}: loss {m['train_loss']:.3f}, "
                           f"train acc {m['train_acc']:.2%}{val} ({m['seconds']:.0f} s)")
        _, test_acc = self._evaluate(*self.test_set.tensors())
        export_quantized(self.model.eval()).to(memory_format=torch.contiguous_format)
        meta = {"arch": cfg.model, "width": cfg.width, "num_classes": self.num_classes,
                "norm": cfg.norm, "clip": cfg.clip, "randbet_ber": cfg.randbet_ber,
                "dataset": cfg.dataset, "memory": cfg.memory.to_dict(), "epoch": cfg.epochs,
                "test_acc": test_acc, "val_acc": self.metrics[-1].get("val_acc"),
                "split": {"val_size": cfg.val_size, "seed": cfg.split_seed},
                "train_seconds": sum(m["seconds"] for m in self.metrics),
                "init_fingerprint": self.init_fingerprint,
                "metrics": self.metrics, "config": dataclasses.asdict(cfg),
                "command": cfg.command(self.out)}
        save_checkpoint(self.out, self.model, compact=self.compact, **meta)
        self.state_path.unlink(missing_ok=True)
        return meta


def train_base(config: TrainBaseConfig, out: str | os.PathLike, *, progress: bool = True,
               device: torch.device | str = "cpu", compact: bool = False) -> dict[str, Any]:
    """Train ``config``, save the QAT-exported model to ``out``; return the checkpoint metadata.

    Resumes from ``<out>.partial`` if it exists (ResumeError if it was made with another
    configuration). Writes the per-epoch metrics to ``<out stem>.metrics.csv`` as it goes. The
    model trains on ``device`` (the data stays on the CPU and goes there batch by batch); a run
    may resume on another device. ``compact`` saves the weights as integers and scales
    (:func:`neuralfuse.checkpoint.save_checkpoint`), a quarter of the size, loading bit-identical.

    >>> train_base(TrainBaseConfig(model="vgg11", width=0.25, epochs=30), "base.pt")  # doctest: +SKIP
    """
    return BaseTrainer(config, out, progress=progress, device=device, compact=compact).run()
