"""EOPM: train a NeuralFuse generator by expectation over perturbed models (paper, Eq. 3-5).

For a mini-batch (x, y) and N chips drawn fresh at every step (:func:`neuralfuse.chips.training_chips`)

    L = CE(M0(F(x)), y) + λ · (1/N) Σ_i CE(M_pi(F(x)), y)

where M0 is the deployed model with quantized, fault-free weights and M_pi the same model on chip i
at the training operating point. Only the generator trains. One step costs one generator forward
and backward plus one clean and N perturbed forward/backward passes of the base model, nothing more:

- z = F(x) is computed once; each base-model pass starts from a detached copy of z, and the
  gradients with respect to z are summed, then pushed through the generator with one backward;
- faults are applied to the model's own parameters by :meth:`sramsim.Deployment.at` (no copy of
  the model per chip), so each pass's backward runs inside its ``with`` block, before the weights
  are restored;
- base-model parameters have ``requires_grad`` off and the model stays in eval mode.

Access settings. Relaxed: the passes run through the base (target) model. Restricted: they run
through white-box surrogates and the target is only ever run forward (validation). With S
surrogates the clean term is the mean of the S surrogates' clean losses and chip i is applied to
surrogate ``i mod S`` (so a step costs S clean and N perturbed passes, as with one model when S=1).

Protocol. The training images are split by :func:`neuralfuse.data.holdout_split` with
``val_size`` and ``split_seed``; when the base model was trained with a held-out split, use its
split (:func:`base_split` reads it from the checkpoint), so the generator never trains on the images
that chose the base model's epochs, and validates on (``val_images`` of) them. The per-epoch
validation runs on validation chips (:func:`neuralfuse.chips.validation_chips`), which neither
training nor evaluation ever draws.

Arithmetic: with ``precision="bf16"`` (:mod:`neuralfuse.precision`) the generator's and the base
model's forward passes run under autocast; the losses are computed on float32 logits and the
backward passes outside autocast. The precision is part of the run: a run resumes only with the
precision it started with (it changes the numbers every step computes).

How the base model's weights are stored (bits, storage format, technology, fault model, layout)
is one :class:`sramsim.MemoryConfig`, ``TrainConfig.memory``, recorded as ``"memory": {...}`` in
``config.json`` and in the generator's metadata; a run recorded before memory configs (flat
``bits``, ``tech``, ``fault_model``, ``layout``) resumes as that config with symmetric storage.

Runs live in a directory (:mod:`neuralfuse.runs`): ``config.json`` (settings, split, versions,
resolved BER, command), ``checkpoint.pt`` (latest state: generator, optimizer, position, metrics;
written atomically every ``checkpoint_every`` steps and after every epoch), ``metrics.csv``,
``learning_curve.png`` (drawn by the ``on_epoch`` callback the command line passes),
``epochs/generator-epochNNN.pt`` (the generator after each epoch, with
that epoch's validation figures) and, when done, ``generator.pt`` (read by
:func:`neuralfuse.checkpoint.load_generator`): the epoch chosen by :func:`select_epoch`, on
validation images and validation chips only. Calling :func:`train` again on the same directory
with the same settings resumes from the checkpoint and ends with the same generator, bit for bit,
as an uninterrupted run: the data order, the augmentation and the chips of every step are
functions of (seed, epoch, step) alone.
"""
from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset, default_collate
from tqdm.auto import tqdm

from characterization.atomic import atomic_path
from characterization.validation import check_scalar
from neuralfuse.augment import augment, augmentation_plan
from neuralfuse.checkpoint import (EOPM_TRAINING_STATE, GENERATOR, GENERATOR_FILE, RUN_RECORD,
                                   atomic_save, check_state_dict, make_payload, model_fingerprint,
                                   read_checkpoint)
from neuralfuse.chips import training_chips, validation_chips
from neuralfuse.data import fixed_subset, holdout_split, recorded_split
from neuralfuse.devices import module_device
from neuralfuse.memory_format import preferred_memory_format
from neuralfuse.evaluation import (accuracy_summary, chip_accuracies, clean_accuracies,
                                   fault_free, load_batches, transform)
from neuralfuse.generators import create_generator
from neuralfuse.precision import DEFAULT_PRECISION, autocast, check_precision
from neuralfuse.runs import SESSION_KEYS, start_run, with_provenance
from sramsim.deployment import Deployment
from sramsim.faults import MAX_SEED
from sramsim.memory import MemoryConfig, split_memory
from sramsim.operating_point import OperatingPoint

MetricsCallback = Callable[[pd.DataFrame, Path], Any]
"""Called with a run's per-epoch metrics (as in metrics.csv) and its directory after every epoch."""

#: Tags keeping the seeded streams apart: "NFOR" (order), "NFAU" (augmentation).
_ORDER_STREAM, _AUGMENT_STREAM = 0x4E46_4F52, 0x4E46_4155
LR_SCHEDULES = ("constant", "cosine")
DEFAULT_VAL_SIZE = 500
"""Images held out for validation when the base model records no split of its own."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained generator (defaults: the paper's). ``memory`` is how the
    base model's weights are stored (a :class:`sramsim.MemoryConfig`, or its dict);
    :meth:`from_dict` also reads its fields given flat (grid specs, older run records)."""

    generator: str
    ber: float | None = None
    voltage: float | None = None  # in units of Vmin (of memory.tech); give this or ber
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    precision: str = DEFAULT_PRECISION  # arithmetic of the passes: fp32 or bf16 (neuralfuse.precision)
    n_chips: int = 10
    lam: float = 5.0
    lr: float = 1e-3
    lr_schedule: str = "constant"  # or "cosine": from lr down to 0 over all the run's steps
    batch_size: int = 25
    epochs: int = 150
    augment: bool = False  # random crop, and flips where the dataset allows them
    seed: int = 0
    train_subset: int | None = None  # use this many training samples (None: all)
    max_steps_per_epoch: int | None = None
    val_size: int = DEFAULT_VAL_SIZE  # held out of the training images (holdout_split)
    split_seed: int = 0  # seed of that split (see base_split: the base model's, where it has one)
    val_images: int | None = None  # held-out images validated on per epoch (None: all of them)
    val_chips: int = 3  # validation-stream chips used for the per-epoch PA
    checkpoint_every: int = 100  # steps
    patience: int | None = None  # stop once validation PA has not improved for this many epochs

    def __post_init__(self) -> None:
        if isinstance(self.memory, Mapping):
            object.__setattr__(self, "memory", MemoryConfig.from_dict(self.memory))
        if not isinstance(self.memory, MemoryConfig):
            raise TypeError(f"memory must be a MemoryConfig or its dict, got {type(self.memory).__name__}")
        check_precision(self.precision, training=True)
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule={self.lr_schedule!r} is not valid: use one of {', '.join(LR_SCHEDULES)}")
        for name in ("n_chips", "batch_size", "epochs", "val_chips", "checkpoint_every",
                     "train_subset", "max_steps_per_epoch", "val_images", "patience"):
            if getattr(self, name) is not None:
                check_scalar(getattr(self, name), name, int, min_val=1)
        check_scalar(self.lr, "lr", float, min_val=0, include_boundaries="right")
        check_scalar(self.lam, "lam", float, min_val=0)
        check_scalar(self.val_size, "val_size", int, min_val=0)
        for name in ("seed", "split_seed"):
            check_scalar(getattr(self, name), name, int, min_val=0, max_val=MAX_SEED,
                         include_boundaries="left", allowed="an integer in [0, 2**63)")

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> TrainConfig:
        """A config from settings that give the memory config as ``memory`` (a MemoryConfig or its
        dict) or as flat fields (``bits``, ``storage``, ``tech``, ``fault_model``, ``layout``;
        :func:`sramsim.memory.split_memory`), e.g. a run record's ``config``."""
        memory, rest = split_memory(settings)
        return cls(**rest, memory=memory)

    def point(self) -> OperatingPoint:
        """The training operating point (raises if not exactly one of ber/voltage is set)."""
        return OperatingPoint.resolve(voltage=self.voltage, ber=self.ber, tech=self.memory.tech)

    def learning_rate(self, step: int, total_steps: int) -> float:
        """The learning rate of global step ``step`` (counted from 0) of a run of ``total_steps``."""
        if self.lr_schedule == "cosine":
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
        return self.lr


@dataclass
class StepStats:
    """What one EOPM step measured: the loss terms and the accuracies (fractions) on its batch."""

    loss: float
    clean_loss: float
    perturbed_loss: float
    clean_acc: float
    perturbed_acc: float


def eopm_step(generator: nn.Module, optimizer: torch.optim.Optimizer, deployments: Sequence[Deployment],
              x: Tensor, y: Tensor, *, chips: Sequence[int], point: OperatingPoint,
              lam: float, precision: str = DEFAULT_PRECISION) -> StepStats:
    """One optimizer step of EOPM on batch (x, y) with perturbed models on ``chips``.

    ``deployments`` are the model(s) the loss runs through: the base model (relaxed access) or the
    surrogates (restricted access); chip i is applied to ``deployments[i % len(deployments)]``. Their
    models must be in eval mode with ``requires_grad`` off. The forward passes run at ``precision``.
    """
    optimizer.zero_grad(set_to_none=True)
    with autocast(precision, x.device):
        z = generator(x)
    leaf = z.detach().requires_grad_(True)
    grad_z = torch.zeros_like(leaf)
    clean = []
    for deployment in deployments:
        with fault_free(deployment) as model:
            clean.append(_backward_to_input(model, leaf, y, grad_z, 1.0 / len(deployments), precision))
    perturbed = []
    for i, chip in enumerate(chips):
        with deployments[i % len(deployments)].at(point, chip=chip) as model:
            perturbed.append(_backward_to_input(model, leaf, y, grad_z, lam / len(chips), precision))
    z.backward(grad_z)
    optimizer.step()
    (clean_loss, clean_acc), (perturbed_loss, perturbed_acc) = np.mean(clean, 0), np.mean(perturbed, 0)
    return StepStats(loss=float(clean_loss + lam * perturbed_loss), clean_loss=float(clean_loss),
                     perturbed_loss=float(perturbed_loss), clean_acc=float(clean_acc),
                     perturbed_acc=float(perturbed_acc))


def _backward_to_input(model: nn.Module, leaf: Tensor, y: Tensor, grad_z: Tensor,
                       weight: float, precision: str) -> tuple[float, float]:
    """Add ``weight`` × d CE(model(leaf), y) / d leaf to ``grad_z``; return (loss, accuracy).

    Runs inside the caller's ``Deployment.at`` block: the backward needs the perturbed weights.
    The forward runs at ``precision``; the loss (on float32 logits) and the backward outside autocast.
    """
    with autocast(precision, leaf.device):
        logits = model(leaf)
    loss = F.cross_entropy(logits.float(), y)
    (grad,) = torch.autograd.grad(loss, leaf)
    grad_z.add_(grad, alpha=weight)
    return float(loss.detach()), float((logits.argmax(1) == y).float().mean())


def base_split(base_meta: Mapping[str, Any], dataset: str, *, val_size: int | None = None,
               split_seed: int | None = None) -> dict[str, int]:
    """``{"val_size", "split_seed"}`` for training a generator for the base model of ``base_meta``.

    When the base model was trained on ``dataset`` with images held out (its checkpoint's
    ``split``), the generator must use that split: ``val_size``/``split_seed`` default to it and
    other values raise a ValueError. Otherwise they default to ``DEFAULT_VAL_SIZE`` and 0.

    >>> base_split({"dataset": "cifar10", "split": {"val_size": 5000, "seed": 1}}, "cifar10")
    {'val_size': 5000, 'split_seed': 1}
    >>> base_split({"dataset": "cifar10"}, "cifar10", val_size=100)
    {'val_size': 100, 'split_seed': 0}
    """
    recorded = recorded_split(base_meta, dataset)
    if recorded is None:
        return {"val_size": DEFAULT_VAL_SIZE if val_size is None else val_size,
                "split_seed": 0 if split_seed is None else split_seed}
    held = {"val_size": recorded["val_size"], "split_seed": recorded["seed"]}
    for name, given in (("val_size", val_size), ("split_seed", split_seed)):
        if given is not None and given != held[name]:
            raise ValueError(f"{name}={given} differs from the base model's split ({name}={held[name]}): "
                             "a generator trains and validates on the base model's own split, so leave "
                             f"{name} unset")
    return held


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The order in which epoch ``epoch`` visits ``n`` training samples (NumPy's PCG64)."""
    return np.random.default_rng([_ORDER_STREAM, seed, epoch]).permutation(n).tolist()


def steps_per_epoch(n: int, config: TrainConfig) -> int:
    """Number of steps of one epoch over ``n`` training samples."""
    steps = -(-n // config.batch_size)
    return steps if config.max_steps_per_epoch is None else min(steps, config.max_steps_per_epoch)


def frozen(model: nn.Module) -> nn.Module:
    """``model`` in eval mode with every parameter's ``requires_grad`` off; returns it."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class RunDirectory:
    """The files of one training run (see the module docstring)."""

    def __init__(self, path: str | Path, on_metrics: MetricsCallback | None = None) -> None:
        self.path = Path(path)
        self.on_metrics = on_metrics
        self.config = self.path / RUN_RECORD
        self.checkpoint = self.path / "checkpoint.pt"
        self.metrics = self.path / "metrics.csv"
        self.generator = self.path / GENERATOR_FILE
        self.epochs = self.path / "epochs"

    def epoch_generator(self, epoch: int) -> Path:
        """Where the generator after epoch ``epoch`` (counted from 1) is kept."""
        return self.epochs / f"generator-epoch{epoch:03d}.pt"

    def start(self, record: dict[str, Any]) -> None:
        """Create the directory or check that it holds a run with the same settings; write config.json.

        A run recorded before the split was recorded (by holdout_split, with validation chips)
        cannot resume: its data and chips would change under it.
        """
        if self.config.is_file() and "split" not in json.loads(self.config.read_text()):
            raise ValueError(f"{str(self.path)!r} holds a run of an older neuralfuse, which split the "
                             "training images and chose validation chips otherwise: it cannot resume "
                             "(its generator.pt still loads); train into a new directory")
        start_run(self.path, RUN_RECORD, record, _identity, what="training run directory")

    def write_metrics(self, rows: list[dict[str, float]]) -> None:
        """Write metrics.csv from the per-epoch ``rows``, then call ``on_metrics`` (if any) with them."""
        frame = pd.DataFrame(rows)
        with atomic_path(self.metrics) as tmp:
            frame.to_csv(tmp, index=False)
        if self.on_metrics is not None:
            self.on_metrics(frame, self.path)


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    """The part of a run record that must match to resume: all but command, versions, epochs and
    patience.

    Epochs count only under a learning-rate schedule, which they stretch; with a constant rate a
    finished run continues when given more. Patience only decides when a run stops. A setting
    missing from the record (a run written before the setting existed) counts as its default; a
    record's flat memory settings count as its memory config (:func:`sramsim.memory.split_memory`).
    """
    memory, settings = split_memory(record["config"])
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name != "memory"}
    config = {**defaults, **settings, "memory": memory.to_dict()}
    del config["patience"]
    if config["lr_schedule"] == "constant":
        del config["epochs"]
    kept = {k: v for k, v in record.items() if k not in (*SESSION_KEYS, "config")}
    return {**kept, "config": config}


class _EpochTotals:
    """Running sums of the step statistics of one epoch (part of the checkpoint)."""

    fields = ("loss", "clean_loss", "perturbed_loss", "clean_acc", "perturbed_acc")

    def __init__(self, sums: dict[str, float] | None = None) -> None:
        self.sums = dict(sums) if sums else {f: 0.0 for f in ("samples", *self.fields)}

    def add(self, stats: StepStats, samples: int) -> None:
        self.sums["samples"] += samples
        for f in self.fields:
            self.sums[f] += getattr(stats, f) * samples

    def means(self) -> dict[str, float]:
        n = max(self.sums["samples"], 1.0)
        return {f: self.sums[f] / n for f in self.fields}


def _split(dataset: Dataset, config: TrainConfig) -> tuple[Dataset, Dataset]:
    """(training images, validation images) of ``dataset`` under ``config`` (see :func:`train`)."""
    train_idx, val_idx = holdout_split(len(dataset), config.val_size, config.split_seed)
    if config.train_subset is not None and config.train_subset > len(train_idx):
        raise ValueError(f"train_subset={config.train_subset} is more than the {len(train_idx)} training "
                         f"samples ({len(dataset)} in the dataset, val_size={config.val_size} held out)")
    if config.val_images is not None and config.val_images > len(val_idx):
        raise ValueError(f"val_images={config.val_images} is more than the {len(val_idx)} held-out "
                         f"images (val_size={config.val_size})")
    train_set = fixed_subset(Subset(dataset, train_idx.tolist()), config.train_subset)
    return train_set, fixed_subset(Subset(dataset, val_idx.tolist()), config.val_images)


def train(run_dir: str | Path, config: TrainConfig, base: nn.Module, dataset: Dataset, *,
          surrogates: Sequence[nn.Module] = (), init: nn.Module | None = None,
          provenance: dict[str, Any] | None = None, progress: bool = True,
          device: torch.device | str | None = None, on_epoch: MetricsCallback | None = None) -> Path:
    """Train a generator with EOPM into ``run_dir`` (resuming it if it holds this run); return generator.pt.

    ``base`` is the target model; with ``surrogates`` (restricted access) the loss runs through them
    and ``base`` is only run forward, for validation. ``dataset`` is the training split; the
    ``val_size`` images :func:`neuralfuse.data.holdout_split` holds out of it (with ``split_seed``)
    never train, and ``val_images`` of them give the per-epoch metrics (CA, and PA on ``val_chips``
    validation chips). ``provenance`` (plain values: checkpoint paths, dataset
    name, the command) is recorded in config.json; everything but its ``command`` must match to
    resume. The models are frozen (eval mode, ``requires_grad`` off) and otherwise left unchanged.
    ``init`` (a generator of the same architecture, e.g. from
    :func:`neuralfuse.checkpoint.load_generator`) starts the training from its weights instead of
    the seeded initialisation: fine-tuning. ``device`` (default: where ``base`` is) holds the
    models, which are moved there, the generator and the data; a run may resume on another device.
    ``on_epoch(metrics, run_dir)`` is called after every epoch with the metrics so far (a DataFrame,
    as metrics.csv), e.g. :func:`neuralfuse.plots.write_learning_curve`, which the command line passes.

        config = TrainConfig(generator="UNetS", ber=0.01, epochs=5)
        train("runs/unets", config, base_model, load_dataset("default"))
    """
    device = module_device(base) if device is None else torch.device(device)
    check_precision(config.precision, device, training=True)
    trainer = _Trainer(config, base.to(device), dataset, [s.to(device) for s in surrogates], init,
                       RunDirectory(run_dir, on_epoch))
    trainer.start(provenance or {})
    with ExitStack() as stack:  # quantize once: each chip then writes only its faulty weights
        for deployment in dict.fromkeys([trainer.target, *trainer.deployments]):
            stack.enter_context(deployment.quantized())
        while trainer.epoch < config.epochs and not stalled(trainer.rows, config.patience):
            trainer.run_epoch(progress)
    return trainer.save_selected()


def select_epoch(rows: Sequence[Mapping[str, float]]) -> int:
    """The epoch whose generator a run keeps: the highest validation PA (mean over validation chips).

    Ties go to the earlier epoch; without validation figures (``val_size=0``) the last epoch is kept.
    ``rows`` are the per-epoch metrics (metrics.csv).
    """
    scored = [row for row in rows if "val_pa_mean" in row and not math.isnan(row["val_pa_mean"])]
    if not scored:
        return int(rows[-1]["epoch"])
    return int(max(scored, key=lambda row: (row["val_pa_mean"], -row["epoch"]))["epoch"])


def stalled(rows: Sequence[Mapping[str, float]], patience: int | None) -> bool:
    """Whether a run with per-epoch metrics ``rows`` has gone ``patience`` epochs without a validation
    PA above its best (the epoch :func:`select_epoch` keeps); never without a patience or rows."""
    if patience is None or not rows:
        return False
    return len(rows) - select_epoch(rows) >= patience


class _Trainer:
    """The state of one EOPM run and the steps that advance it (used by :func:`train`)."""

    def __init__(self, config: TrainConfig, base: nn.Module, dataset: Dataset,
                 surrogates: Sequence[nn.Module], init: nn.Module | None, run: RunDirectory) -> None:
        self.config, self.point, self.run = config, config.point(), run
        if surrogates and config.n_chips < len(surrogates):
            raise ValueError(f"n_chips={config.n_chips} is fewer than the {len(surrogates)} surrogates: "
                             "every surrogate needs at least one perturbed model per step")
        self.train_set, val_set = _split(dataset, config)
        info = getattr(dataset, "info", None)  # datasets from load_dataset say whether flips are allowed
        self.flip = bool(info and info.hflip)
        self.device = module_device(base)
        self.val_batches = (load_batches(val_set, 500, self.device, preferred_memory_format(base))
                            if len(val_set) else [])
        self.input_shape = tuple(self.train_set[0][0].shape)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.generator = create_generator(config.generator, input_shape=self.input_shape)
        self.generator.check_input(self.train_set[0][0][None])
        if init is not None:
            check_state_dict(self.generator, init.state_dict(), f"the initial generator for {config.generator}")
            self.generator.load_state_dict(init.state_dict())
        self.generator.to(self.device)
        self.target = Deployment(frozen(base), memory=config.memory)
        self.deployments = [Deployment(frozen(s), memory=config.memory) for s in surrogates] or [self.target]
        self.optimizer = torch.optim.Adam(self.generator.parameters(), lr=config.lr)
        self.record = {
            "config": dataclasses.asdict(config), "resolved_ber": self.point.ber,
            "input_shape": list(self.input_shape), "base_fingerprint": model_fingerprint(base),
            "surrogate_fingerprints": [model_fingerprint(s) for s in surrogates],
            "split": {"function": "holdout_split", "val_size": config.val_size, "seed": config.split_seed},
            "train_samples": len(self.train_set), "val_samples": len(val_set),
            "init_fingerprint": None if init is None else model_fingerprint(init),
        }
        self.epoch, self.step, self.totals, self.rows = 0, 0, _EpochTotals(), []

    def start(self, provenance: dict[str, Any]) -> None:
        """Write config.json (checking an existing run's settings) and resume from its checkpoint."""
        self.record = with_provenance(self.record, provenance)
        self.run.start(self.record)
        if self.run.checkpoint.is_file():
            state = read_checkpoint(self.run.checkpoint, EOPM_TRAINING_STATE)
            self.generator.load_state_dict(state["state_dict"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.epoch, self.step, self.rows = state["epoch"], state["step"], state["metrics"]
            self.totals = _EpochTotals(state["totals"])

    def save_state(self) -> None:
        """Write checkpoint.pt: generator, optimizer, position and metrics so far."""
        atomic_save(make_payload(EOPM_TRAINING_STATE, self.generator.state_dict(), {
            "optimizer": self.optimizer.state_dict(), "epoch": self.epoch, "step": self.step,
            "totals": self.totals.sums, "metrics": self.rows}), self.run.checkpoint)

    def run_epoch(self, progress: bool) -> None:
        """Run (the rest of) the current epoch, then validate, checkpoint and write the metrics."""
        config, n = self.config, steps_per_epoch(len(self.train_set), self.config)
        order = epoch_order(len(self.train_set), config.seed, self.epoch)
        if config.augment:
            rng = np.random.default_rng([_AUGMENT_STREAM, config.seed, self.epoch])
            offsets, flips = augmentation_plan(rng, len(self.train_set), self.flip)
        bar = tqdm(total=n, initial=self.step, desc=f"epoch {self.epoch + 1}/{config.epochs}",
                   unit="step", disable=not progress, dynamic_ncols=True)
        self.generator.train()
        while self.step < n:
            batch = order[self.step * config.batch_size:(self.step + 1) * config.batch_size]
            x, y = default_collate([self.train_set[i] for i in batch])
            if config.augment:
                x = augment(x, offsets[batch], flips[batch])
            x, y = x.to(self.device), y.to(self.device)
            chips = training_chips(config.seed, self.epoch, self.step, config.n_chips)
            lr = config.learning_rate(self.epoch * n + self.step, config.epochs * n)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            stats = eopm_step(self.generator, self.optimizer, self.deployments, x, y,
                              chips=chips, point=self.point, lam=config.lam,
                              precision=config.precision)
            self.totals.add(stats, len(y))
            self.step += 1
            means = self.totals.means()
            bar.update()
            bar.set_postfix({"loss": f"{means['loss']:.3f}", "clean acc": f"{100 * means['clean_acc']:.1f}%",
                             "perturbed acc": f"{100 * means['perturbed_acc']:.1f}%"})
            if self.step % config.checkpoint_every == 0 and self.step < n:
                self.save_state()
        bar.close()
        means = self.totals.means()
        row = {"epoch": self.epoch + 1, **{k: means[k] for k in ("loss", "clean_loss", "perturbed_loss")},
               "train_clean_acc": 100 * means["clean_acc"],
               "train_perturbed_acc": 100 * means["perturbed_acc"],
               "lr": self.optimizer.param_groups[0]["lr"]}
        if self.val_batches:
            row.update(validate(self.generator, self.target, self.point, self.val_batches,
                                validation_chips(config.val_chips), config.precision))
        if progress:
            tqdm.write("  ".join(f"{k}={v:.4g}" for k, v in row.items()))
        self.rows.append(row)
        self.save_generator(self.run.epoch_generator(row["epoch"]), row)
        self.epoch, self.step, self.totals = self.epoch + 1, 0, _EpochTotals()
        self.save_state()
        self.run.write_metrics(self.rows)

    def save_selected(self) -> Path:
        """Write generator.pt from the epoch :func:`select_epoch` picks; return its path.

        Epochs without a kept generator (trained by a neuralfuse that kept none) are not candidates.
        """
        kept = [row for row in self.rows if self.run.epoch_generator(row["epoch"]).is_file()]
        epoch = len(self.rows)  # without kept epochs: the generator in hand, the last epoch's
        if kept:
            epoch = select_epoch(kept)
            state = read_checkpoint(self.run.epoch_generator(epoch), GENERATOR)
            self.generator.load_state_dict(state["state_dict"])
        return self.save_generator(self.run.generator, self.rows[epoch - 1], selected_from=len(self.rows))

    def save_generator(self, path: Path, row: Mapping[str, float], *, selected_from: int | None = None) -> Path:
        """Write the generator's weights, what they were trained for and its epoch's metrics ``row``."""
        meta = {"generator": self.config.generator, "input_shape": list(self.input_shape),
                "base_fingerprint": self.record["base_fingerprint"],
                "surrogate_fingerprints": self.record["surrogate_fingerprints"],
                "ber": self.point.ber, "voltage": self.point.voltage, "memory": self.config.memory.to_dict(),
                "epochs": self.config.epochs, "seed": self.config.seed,
                "precision": self.config.precision,
                "provenance": self.record["provenance"], "epoch": int(row["epoch"]),
                "metrics": {k: float(v) for k, v in row.items() if k != "epoch"}}
        if selected_from is not None:
            meta["selection"] = (f"epoch {meta['epoch']} of {selected_from}: highest validation PA "
                                 "(neuralfuse.eopm.select_epoch)")
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomic_save(make_payload(GENERATOR, self.generator.state_dict(), meta), path)


def validate(generator: nn.Module, target: Deployment, point: OperatingPoint,
             batches: Sequence[tuple[Tensor, Tensor]], chips: Sequence[int],
             precision: str = DEFAULT_PRECISION) -> dict[str, float]:
    """Per-epoch monitoring on held-out batches, with NeuralFuse and, for reference, without, at
    ``precision``.

    Returns ``val_ca``, ``val_pa_mean``, ``val_pa_std`` (with NeuralFuse, PA over ``chips``),
    ``val_base_ca``, ``val_base_pa_mean`` (the base model alone on the same chips) and ``val_rp``.
    """
    input_sets = [batches, transform(generator, batches, precision)]
    ca = clean_accuracies(target, input_sets, precision)
    pa = chip_accuracies(target, point, chips, input_sets, precision=precision)
    alone, with_nf = accuracy_summary(ca[0], pa[:, 0]), accuracy_summary(ca[1], pa[:, 1])
    return {"val_ca": with_nf["ca"], "val_pa_mean": with_nf["pa_mean"], "val_pa_std": with_nf["pa_std"],
            "val_base_ca": alone["ca"], "val_base_pa_mean": alone["pa_mean"],
            "val_rp": with_nf["pa_mean"] - alone["pa_mean"]}
