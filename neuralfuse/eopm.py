"""EOPM: train a NeuralFuse generator by expectation over perturbed models (paper, Eq. 3-5).

For a mini-batch (x, y) and N chips drawn fresh at every step (:func:`neuralfuse.chips.training_chips`)

    L = CE(M0(F(x)), y) + λ · (1/N) Σ_i CE(M_pi(F(x)), y)

where M0 is the deployed model with quantized, fault-free weights and M_pi the same model on chip i
at the training operating point. Only the generator trains. One step costs one generator forward
and backward plus one clean and N perturbed forward/backward passes of the base model, nothing more:

- z = F(x) is computed once; each base-model pass starts from a detached copy of z, and the
  gradients with respect to z are summed, then pushed through the generator with one backward;
- faults are applied in place by :meth:`sramsim.Deployment.at` (no copy of the model per chip), so
  each pass's backward runs inside its ``with`` block, before the weights are restored;
- base-model parameters have ``requires_grad`` off and the model stays in eval mode.

Access settings. Relaxed: the passes run through the base (target) model. Restricted: they run
through white-box surrogates and the target is only ever run forward (validation). With S
surrogates the clean term is the mean of the S surrogates' clean losses and chip i is applied to
surrogate ``i mod S`` (so a step costs S clean and N perturbed passes, as with one model when S=1).

Runs live in a directory: ``config.json`` (settings, versions, resolved BER, command),
``checkpoint.pt`` (latest state: generator, optimizer, position, metrics; written atomically every
``checkpoint_every`` steps and after every epoch), ``metrics.csv``, ``learning_curve.png`` and, when
done, ``generator.pt``. Calling :func:`train` again on the same directory with the same settings
resumes from the checkpoint and ends with the same generator, bit for bit, as an uninterrupted run:
the data order, the augmentation and the chips of every step are functions of (seed, epoch, step)
alone.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import platform
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset, Subset, default_collate
from tqdm.auto import tqdm

from characterization import DEFAULT_TECH
from characterization.atomic import atomic_path, write_json
from neuralfuse.augment import augment, augmentation_plan
from neuralfuse.checkpoint import (EOPM_TRAINING_STATE, GENERATOR, CheckpointError, atomic_save,
                                   check_state_dict, make_payload, read_checkpoint)
from neuralfuse.chips import evaluation_chips, training_chips
from neuralfuse.devices import module_device
from neuralfuse.evaluate import (accuracy_summary, chip_accuracies, clean_accuracies,
                                 fault_free, load_batches, transform)
from neuralfuse.generators import create_generator
from sramsim.deployment import Deployment
from sramsim.operating_point import OperatingPoint
from sramsim.faults import check_fault_model
from sramsim.quant import check_bits

#: Generators whose constructor needs the input shape (the others work on any multiple of 8 pixels).
NEEDS_INPUT_SHAPE = {"uip"}
#: Tags keeping the seeded streams apart: "NFSP" (split), "NFOR" (order), "NFAU" (augmentation).
_SPLIT_STREAM, _ORDER_STREAM, _AUGMENT_STREAM = 0x4E46_5350, 0x4E46_4F52, 0x4E46_4155
LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained generator (defaults: the paper's)."""

    generator: str
    ber: float | None = None
    voltage: float | None = None  # in units of Vmin; give this or ber
    fault_model: str = "stuck-at"
    tech: str = DEFAULT_TECH
    bits: int = 8
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
    val_size: int = 500  # held out from the training split for per-epoch monitoring
    val_chips: int = 3  # evaluation-stream chips used for the per-epoch PA
    checkpoint_every: int = 100  # steps

    def __post_init__(self) -> None:
        check_fault_model(self.fault_model)
        check_bits(self.bits)
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule={self.lr_schedule!r} is not valid: use one of {', '.join(LR_SCHEDULES)}")
        positive = {"n_chips": self.n_chips, "lr": self.lr, "batch_size": self.batch_size,
                    "epochs": self.epochs, "val_chips": self.val_chips,
                    "checkpoint_every": self.checkpoint_every, "train_subset": self.train_subset,
                    "max_steps_per_epoch": self.max_steps_per_epoch}
        for name, value in positive.items():
            if value is not None and not value > 0:
                raise ValueError(f"{name}={value!r} is not valid: use a positive number")
        for name, value in {"lam": self.lam, "seed": self.seed, "val_size": self.val_size}.items():
            if value < 0:
                raise ValueError(f"{name}={value!r} is not valid: use a non-negative number")

    def point(self) -> OperatingPoint:
        """The training operating point (raises if not exactly one of ber/voltage is set)."""
        return OperatingPoint.resolve(voltage=self.voltage, ber=self.ber, tech=self.tech)

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
              lam: float) -> StepStats:
    """One optimizer step of EOPM on batch (x, y) with perturbed models on ``chips``.

    ``deployments`` are the model(s) the loss runs through: the base model (relaxed access) or the
    surrogates (restricted access); chip i is applied to ``deployments[i % len(deployments)]``. Their
    models must be in eval mode with ``requires_grad`` off.
    """
    optimizer.zero_grad(set_to_none=True)
    z = generator(x)
    leaf = z.detach().requires_grad_(True)
    grad_z = torch.zeros_like(leaf)
    clean = []
    for deployment in deployments:
        with fault_free(deployment) as model:
            clean.append(_backward_to_input(model, leaf, y, grad_z, 1.0 / len(deployments)))
    perturbed = []
    for i, chip in enumerate(chips):
        with deployments[i % len(deployments)].at(point, chip=chip) as model:
            perturbed.append(_backward_to_input(model, leaf, y, grad_z, lam / len(chips)))
    z.backward(grad_z)
    optimizer.step()
    (clean_loss, clean_acc), (perturbed_loss, perturbed_acc) = np.mean(clean, 0), np.mean(perturbed, 0)
    return StepStats(loss=float(clean_loss + lam * perturbed_loss), clean_loss=float(clean_loss),
                     perturbed_loss=float(perturbed_loss), clean_acc=float(clean_acc),
                     perturbed_acc=float(perturbed_acc))


def _backward_to_input(model: nn.Module, leaf: Tensor, y: Tensor, grad_z: Tensor,
                       weight: float) -> tuple[float, float]:
    """Add ``weight`` × d CE(model(leaf), y) / d leaf to ``grad_z``; return (loss, accuracy).

    Runs inside the caller's ``Deployment.at`` block: the backward needs the perturbed weights.
    """
    logits = model(leaf)
    loss = F.cross_entropy(logits, y)
    (grad,) = torch.autograd.grad(loss, leaf)
    grad_z.add_(grad, alpha=weight)
    return float(loss.detach()), float((logits.argmax(1) == y).float().mean())


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 of a model's state (names, dtypes, shapes, values): identifies the exact weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def build_generator(name: str, input_shape: Sequence[int]) -> nn.Module:
    """``create_generator(name)``, with ``input_shape`` for the generators that need it (UIP)."""
    kwargs = {"input_shape": tuple(input_shape)} if name.casefold() in NEEDS_INPUT_SHAPE else {}
    return create_generator(name, **kwargs)


def _permutation(n: int, *words: int) -> list[int]:
    """A permutation of range(n) seeded by a SeedSequence hash of ``words``."""
    seed = int(np.random.SeedSequence(list(words)).generate_state(1, np.uint64)[0] >> np.uint64(1))
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


def split_dataset(dataset: Dataset, config: TrainConfig) -> tuple[Subset, Subset]:
    """(training part, validation part) of ``dataset``: a seeded shuffle, ``val_size`` held out."""
    n = len(dataset)
    if config.val_size >= n:
        raise ValueError(f"val_size={config.val_size} leaves no training data: the dataset has {n} samples")
    order = _permutation(n, _SPLIT_STREAM, config.seed)
    train = order[config.val_size:]
    if config.train_subset is not None:
        if config.train_subset > len(train):
            raise ValueError(f"train_subset={config.train_subset} is more than the {len(train)} training "
                             f"samples ({n} in the dataset, val_size={config.val_size} held out)")
        train = train[:config.train_subset]
    return Subset(dataset, train), Subset(dataset, order[:config.val_size])


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The order in which epoch ``epoch`` visits ``n`` training samples."""
    return _permutation(n, _ORDER_STREAM, seed, epoch)


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

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.checkpoint = self.path / "checkpoint.pt"
        self.metrics = self.path / "metrics.csv"
        self.plot = self.path / "learning_curve.png"
        self.generator = self.path / "generator.pt"

    def start(self, record: dict[str, Any]) -> None:
        """Create the directory or check that it holds a run with the same settings; write config.json."""
        if self.config.is_file():
            previous = json.loads(self.config.read_text())
            changes = record_differences(_identity(previous), _identity(record))
            if changes:
                raise ValueError(f"{str(self.path)!r} holds a run with other settings "
                                 f"({'; '.join(changes)}): "
                                 "repeat its command to resume it, or train into a new directory")
        elif self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise ValueError(f"{str(self.path)!r} exists and is not a training run directory: "
                             "choose a new or empty directory")
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.config, record)

    def write_metrics(self, rows: list[dict[str, float]]) -> None:
        """Write metrics.csv and the learning-curve plot from the per-epoch ``rows``."""
        frame = pd.DataFrame(rows)
        with atomic_path(self.metrics) as tmp:
            frame.to_csv(tmp, index=False)
        plot_learning_curve(frame, self.plot)


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    """The part of a run record that must match to resume: all but command, versions and epochs.

    Epochs count only under a learning-rate schedule, which they stretch; with a constant rate a
    finished run continues when given more. A setting missing from the record (a run written
    before the setting existed) counts as its default.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    config = {**defaults, **record["config"]}
    if config["lr_schedule"] == "constant":
        del config["epochs"]
    kept = {k: v for k, v in record.items() if k not in ("command", "versions", "config")}
    return {**kept, "config": config}


def record_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``"key: old before, new now"`` for every (nested) key whose value differs."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += record_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} before, {b!r} now")
    return out


def plot_learning_curve(frame: pd.DataFrame, path: Path) -> None:
    """Loss and accuracies per epoch, in two panels, saved atomically to ``path``."""
    from matplotlib.figure import Figure  # no pyplot: leaves the user's backend and figures alone

    fig = Figure(figsize=(10, 3.8))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(frame.epoch, frame.loss, marker="o", label="EOPM loss")
    ax_loss.plot(frame.epoch, frame.clean_loss, marker=".", label="clean CE")
    ax_loss.plot(frame.epoch, frame.perturbed_loss, marker=".", label="perturbed CE (mean)")
    ax_loss.set(xlabel="epoch", ylabel="training loss")
    for column, label in (("train_clean_acc", "train clean"), ("train_perturbed_acc", "train perturbed"),
                          ("val_ca", "validation CA"), ("val_pa_mean", "validation PA")):
        if column in frame:
            ax_acc.plot(frame.epoch, frame[column], marker=".", label=label)
    if "val_base_pa_mean" in frame:
        ax_acc.plot(frame.epoch, frame.val_base_ca, linestyle=":", color="gray",
                    label="validation CA, base model alone")
        ax_acc.plot(frame.epoch, frame.val_base_pa_mean, linestyle="--", color="gray",
                    label="validation PA, base model alone")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)


def package_versions() -> dict[str, str]:
    """Versions of this package, torch, numpy and Python, for run records."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        own = version("lowvolt-neuralfuse")
    except PackageNotFoundError:
        own = "unknown"
    return {"lowvolt-neuralfuse": own, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


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


def train(run_dir: str | Path, config: TrainConfig, base: nn.Module, dataset: Dataset, *,
          surrogates: Sequence[nn.Module] = (), init: nn.Module | None = None,
          provenance: dict[str, Any] | None = None, progress: bool = True,
          device: torch.device | str | None = None) -> Path:
    """Train a generator with EOPM into ``run_dir`` (resuming it if it holds this run); return generator.pt.

    ``base`` is the target model; with ``surrogates`` (restricted access) the loss runs through them
    and ``base`` is only run forward, for validation. ``dataset`` is the training split; ``val_size``
    samples of it are held out for the per-epoch metrics (CA, and PA on ``val_chips`` evaluation
    chips, which training never draws). ``provenance`` (plain values: checkpoint paths, dataset
    name, the command) is recorded in config.json; everything but its ``command`` must match to
    resume. The models are frozen (eval mode, ``requires_grad`` off) and otherwise left unchanged.
    ``init`` (a generator of the same architecture, e.g. from :func:`load_generator`) starts the
    training from its weights instead of the seeded initialisation: fine-tuning. ``device`` (default:
    where ``base`` is) holds the models, which are moved there, the generator and the data; a
    run may resume on another device.

        config = TrainConfig(generator="UNetS", ber=0.01, epochs=5)
        train("runs/unets", config, base_model, load_dataset("default"))
    """
    device = module_device(base) if device is None else torch.device(device)
    trainer = _Trainer(config, base.to(device), dataset, [s.to(device) for s in surrogates], init,
                       RunDirectory(run_dir))
    trainer.start(provenance or {})
    with ExitStack() as stack:  # quantize once: each chip then writes only its faulty weights
        for deployment in dict.fromkeys([trainer.target, *trainer.deployments]):
            stack.enter_context(deployment.quantized())
        while trainer.epoch < config.epochs:
            trainer.run_epoch(progress)
    return trainer.save_generator()


class _Trainer:
    """The state of one EOPM run and the steps that advance it (used by :func:`train`)."""

    def __init__(self, config: TrainConfig, base: nn.Module, dataset: Dataset,
                 surrogates: Sequence[nn.Module], init: nn.Module | None, run: RunDirectory) -> None:
        self.config, self.point, self.run = config, config.point(), run
        if surrogates and config.n_chips < len(surrogates):
            raise ValueError(f"n_chips={config.n_chips} is fewer than the {len(surrogates)} surrogates: "
                             "every surrogate needs at least one perturbed model per step")
        self.train_set, val_set = split_dataset(dataset, config)
        info = getattr(dataset, "info", None)  # datasets from load_dataset say whether flips are allowed
        self.flip = bool(info and info.hflip)
        self.device = module_device(base)
        self.val_batches = load_batches(val_set, 500, self.device) if len(val_set) else []
        self.input_shape = tuple(self.train_set[0][0].shape)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.generator = build_generator(config.generator, self.input_shape)
        self.generator.check_input(self.train_set[0][0][None])
        if init is not None:
            check_state_dict(self.generator, init.state_dict(), f"the initial generator for {config.generator}")
            self.generator.load_state_dict(init.state_dict())
        self.generator.to(self.device)
        deploy = dict(bits=config.bits, tech=config.tech, fault_model=config.fault_model)
        self.target = Deployment(frozen(base), **deploy)
        self.deployments = [Deployment(frozen(s), **deploy) for s in surrogates] or [self.target]
        self.optimizer = torch.optim.Adam(self.generator.parameters(), lr=config.lr)
        self.record = {
            "config": dataclasses.asdict(config), "resolved_ber": self.point.ber,
            "input_shape": list(self.input_shape), "base_fingerprint": model_fingerprint(base),
            "surrogate_fingerprints": [model_fingerprint(s) for s in surrogates],
            "train_samples": len(self.train_set), "val_samples": len(val_set),
            "init_fingerprint": None if init is None else model_fingerprint(init),
        }
        self.epoch, self.step, self.totals, self.rows = 0, 0, _EpochTotals(), []

    def start(self, provenance: dict[str, Any]) -> None:
        """Write config.json (checking an existing run's settings) and resume from its checkpoint."""
        self.record.update(provenance={k: v for k, v in provenance.items() if k != "command"},
                           command=provenance.get("command", " ".join(sys.argv)), versions=package_versions())
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
                              chips=chips, point=self.point, lam=config.lam)
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
                                evaluation_chips(config.val_chips)))
        if progress:
            tqdm.write("  ".join(f"{k}={v:.4g}" for k, v in row.items()))
        self.rows.append(row)
        self.epoch, self.step, self.totals = self.epoch + 1, 0, _EpochTotals()
        self.save_state()
        self.run.write_metrics(self.rows)

    def save_generator(self) -> Path:
        """Write generator.pt: the weights and what they were trained for; return its path."""
        meta = {"generator": self.config.generator, "input_shape": list(self.input_shape),
                "base_fingerprint": self.record["base_fingerprint"],
                "surrogate_fingerprints": self.record["surrogate_fingerprints"],
                "ber": self.point.ber, "voltage": self.point.voltage, "tech": self.config.tech,
                "fault_model": self.config.fault_model, "bits": self.config.bits,
                "epochs": self.config.epochs, "seed": self.config.seed,
                "provenance": self.record["provenance"]}
        return atomic_save(make_payload(GENERATOR, self.generator.state_dict(), meta), self.run.generator)


def validate(generator: nn.Module, target: Deployment, point: OperatingPoint,
             batches: Sequence[tuple[Tensor, Tensor]], chips: Sequence[int]) -> dict[str, float]:
    """Per-epoch monitoring on held-out batches, with NeuralFuse and, for reference, without.

    Returns ``val_ca``, ``val_pa_mean``, ``val_pa_std`` (with NeuralFuse, PA over ``chips``),
    ``val_base_ca``, ``val_base_pa_mean`` (the base model alone on the same chips) and ``val_rp``.
    """
    input_sets = [batches, transform(generator, batches)]
    ca = clean_accuracies(target, input_sets)
    pa = chip_accuracies(target, point, chips, input_sets)
    alone, with_nf = accuracy_summary(ca[0], pa[:, 0]), accuracy_summary(ca[1], pa[:, 1])
    return {"val_ca": with_nf["ca"], "val_pa_mean": with_nf["pa_mean"], "val_pa_std": with_nf["pa_std"],
            "val_base_ca": alone["ca"], "val_base_pa_mean": alone["pa_mean"],
            "val_rp": with_nf["pa_mean"] - alone["pa_mean"]}


def load_generator(run_dir: str | Path, *, base: nn.Module | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The trained generator of ``run_dir`` (eval mode) and its metadata.

    With ``base``, also check that the generator was trained for exactly that base model (same
    weights); a mismatch raises a CheckpointError. Missing directories or an unfinished run raise
    FileNotFoundError naming what is missing.
    """
    run = RunDirectory(run_dir)
    if not run.path.is_dir():
        raise FileNotFoundError(f"run directory {str(run.path)!r} does not exist")
    if not run.generator.is_file():
        hint = ("training has not finished: repeat the train command to resume it"
                if run.config.is_file() else "it is not a training run directory")
        raise FileNotFoundError(f"{str(run.path)!r} has no generator.pt ({hint})")
    payload = read_checkpoint(run.generator, GENERATOR)
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    generator = build_generator(meta["generator"], meta["input_shape"])
    generator.load_state_dict(payload["state_dict"])
    if base is not None and model_fingerprint(base) != meta["base_fingerprint"]:
        raise CheckpointError(f"the generator in {str(run.path)!r} was trained for another base model "
                              "(its weights differ from the ones given)")
    return generator.eval(), meta
