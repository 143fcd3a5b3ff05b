"""Evaluation: clean and perturbed accuracy with and without NeuralFuse, recovery and latency.

All accuracies are in percent, computed on the deployed model (weights stored as its memory
config says, :class:`sramsim.MemoryConfig`: bit width, storage format, fault model, layout):

- CA: clean accuracy, quantized weights without faults;
- PA: perturbed accuracy on each evaluation chip (:func:`neuralfuse.chips.evaluation_chips`, never
  seen in training; or on measured chips, fault maps), reported as mean and sample standard
  deviation over the chips;
- RP: recovery, PA with NeuralFuse minus PA without, in points; efficiency ratio: RP per million
  generator parameters; latency: median batch-1 forward time, with and without the generator.

    point = OperatingPoint.resolve(ber=0.01)
    result = evaluate(base, test_set, point=point, generator=generator, chips=10,
                      memory=MemoryConfig(bits=8, storage="robust"))
    print(format_table(result))

:func:`plan_evaluation` gives what an evaluation runs on (images, chips) and the settings that
name its result file; ``neuralfuse evaluate`` and :mod:`neuralfuse.grid` both use it.

Each chip's faults are applied once (chip loop outside, batch loop inside) and the generator's
output is computed once per batch and reused on every chip. Every forward pass runs at the
``precision`` given (:mod:`neuralfuse.precision`; fp32 by default), recorded in the result.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from neuralfuse.checkpoint import RUN_RECORD
from neuralfuse.chips import ChipSpec, evaluation_chips, map_at, map_fingerprint, resolve_chips, validation_chips
from neuralfuse.data import base_validation_set, fixed_subset, load_dataset
from neuralfuse.devices import module_device
from neuralfuse.memory_format import preferred_memory_format
from neuralfuse.result_files import RESULT_PREFIX, evaluation_settings, result_memory, settings_of
from neuralfuse.precision import DEFAULT_PRECISION, autocast, check_precision
from sramsim.deployment import Deployment
from sramsim.faults import FaultMap
from sramsim.layers import eval_mode
from sramsim.memory import FIELDS as MEMORY_FIELDS, MemoryConfig, split_memory
from sramsim.operating_point import OperatingPoint

Batch = tuple[Tensor, Tensor]


def fault_free(deployment: Deployment):
    """Context yielding the deployed model with quantized weights and no faults (for CA).

    Unlike ``deployment.quantized()`` it may be entered inside ``quantized()``, where it costs nothing.
    """
    return deployment.at(ber=0.0, chip=0)


def load_batches(dataset: Dataset, batch_size: int, device: torch.device | str | None = None,
                 memory_format: torch.memory_format = torch.contiguous_format) -> list[Batch]:
    """The whole of ``dataset`` as a list of (inputs, labels) batches, in order (on ``device`` if given).

    Images are laid out in ``memory_format``: pass :func:`neuralfuse.memory_format.preferred_memory_format`
    of the model that reads them (channels-last inputs run a wide model's convolutions about 1.4x
    faster on CPU, with its weights left as they are).
    """
    batches = DataLoader(dataset, batch_size=batch_size, shuffle=False)
    return [(x.to(device, memory_format=memory_format), y.to(device)) for x, y in batches]


def transform(generator: nn.Module, batches: Sequence[Batch],
              precision: str = DEFAULT_PRECISION) -> list[Batch]:
    """``batches`` with every input replaced by F(x) (kept in float32), the generator run once per
    batch in eval mode at ``precision``."""
    with eval_mode(generator), torch.inference_mode():
        return [(_forward(generator, x, precision).float(), y) for x, y in batches]


def _forward(model: nn.Module, x: Tensor, precision: str) -> Tensor:
    """``model(x)`` with its arithmetic at ``precision`` on ``x``'s device."""
    with autocast(precision, x.device):
        return model(x)


def accuracy(model: nn.Module, batches: Sequence[Batch], precision: str = DEFAULT_PRECISION) -> float:
    """Top-1 accuracy of ``model`` on ``batches`` at ``precision``, in percent."""
    correct = total = 0
    with torch.inference_mode():
        for x, y in batches:
            correct += int((_forward(model, x, precision).argmax(1) == y).sum())
            total += len(y)
    return 100.0 * correct / total


def clean_accuracies(deployment: Deployment, input_sets: Sequence[Sequence[Batch]],
                     precision: str = DEFAULT_PRECISION) -> np.ndarray:
    """CA of the deployed model (quantized, fault-free) on each set of batches; shape (sets,)."""
    with eval_mode(deployment.model), fault_free(deployment) as model:
        return np.array([accuracy(model, batches, precision) for batches in input_sets])


def on_chip(deployment: Deployment, point: OperatingPoint, chip: int | FaultMap):
    """``deployment.at(...)`` on ``chip`` at ``point``: a chip seed, or a fault map (at the
    point's BER: :func:`neuralfuse.chips.map_at`)."""
    if isinstance(chip, FaultMap):
        return deployment.at(fault_map=map_at(chip, point.ber))
    return deployment.at(point, chip=chip)


def chip_accuracies(deployment: Deployment, point: OperatingPoint, chips: Sequence[int | FaultMap],
                    input_sets: Sequence[Sequence[Batch]], *, progress: bool = False,
                    precision: str = DEFAULT_PRECISION) -> np.ndarray:
    """PA on each chip (a seed or a fault map; faults applied once per chip) for each set of
    batches; shape (chips, sets)."""
    rows = []
    with eval_mode(deployment.model):
        for chip in tqdm(chips, desc="chips", unit="chip", disable=not progress, leave=False):
            with on_chip(deployment, point, chip) as model:
                rows.append([accuracy(model, batches, precision) for batches in input_sets])
    return np.array(rows).reshape(len(chips), len(input_sets))


def check_fault_maps(deployment: Deployment, fault_maps: Sequence[FaultMap] | None,
                     points: Sequence[OperatingPoint]) -> None:
    """Refuse, before any work, fault maps that ``deployment`` cannot run on (tech, arrays, cells,
    layout: :meth:`sramsim.Deployment.check_fault_map`) or that hold too low a rate for a point."""
    for fault_map in fault_maps or ():
        deployment.check_fault_map(fault_map)
        for point in points:
            map_at(fault_map, point.ber)


def latencies_ms(forwards: Mapping[str, Callable[[Tensor], Tensor]], x: Tensor,
                 repeats: int, precision: str = DEFAULT_PRECISION) -> dict[str, float]:
    """Median wall time of each ``forwards[name](x)`` at ``precision`` in milliseconds over
    ``repeats`` runs (after three warm-up rounds). The forwards take turns, so a machine shared
    with other work slows them alike and their ratio holds."""
    times: dict[str, list[float]] = {name: [] for name in forwards}
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    with torch.inference_mode(), autocast(precision, x.device):
        for i in range(repeats + 3):
            for name, forward in forwards.items():
                start = time.perf_counter()
                forward(x)
                sync()
                if i >= 3:
                    times[name].append(time.perf_counter() - start)
    return {name: 1000.0 * float(np.median(t)) for name, t in times.items()}


def generator_parameters(generator: nn.Module) -> int:
    """Number of trainable parameters of G (``generator.net``), as the paper counts them."""
    return sum(p.numel() for p in generator.net.parameters())


def accuracy_summary(ca: float, pa: np.ndarray) -> dict:
    """``ca`` and the per-chip accuracies ``pa`` as a dict: ``ca``, ``pa_mean``, ``pa_std`` (sample
    standard deviation over chips; 0 for one chip) and ``pa_per_chip``."""
    return {"ca": float(ca), "pa_mean": float(pa.mean()),
            "pa_std": float(pa.std(ddof=1)) if len(pa) > 1 else 0.0, "pa_per_chip": pa.tolist()}


def evaluate(base: nn.Module, dataset: Dataset, *, point: OperatingPoint,
             generator: nn.Module | None = None, generator_name: str | None = None,
             chips: ChipSpec = 10, memory: MemoryConfig | None = None, batch_size: int = 500,
             latency_repeats: int = 30, progress: bool = False, device: torch.device | str | None = None,
             precision: str = DEFAULT_PRECISION) -> dict:
    """Evaluate ``base`` (and ``generator`` in front of it, if given) at ``point``, its weights
    stored as ``memory`` says (default ``MemoryConfig()``; ``point`` must be of its technology).

    With ``device`` the models are moved there (in place); the data goes where ``base`` is. Every
    forward pass runs at ``precision`` (:mod:`neuralfuse.precision`).

    ``chips`` is a count K (the first K evaluation chips), explicit chip seeds, or fault maps
    (measured chips, each at ``point``'s BER: :func:`neuralfuse.chips.map_at`; a map that does
    not fit is refused before any work). Returns a dict of plain values (JSON-ready):
    ``without_nf`` and ``with_nf`` (None without a generator) each with ``ca``, ``pa_mean``,
    ``pa_std`` (sample std over chips), ``pa_per_chip``; ``rp`` (points), ``efficiency_ratio``
    (RP per million generator parameters), ``latency_ms`` (``base`` and ``with_nf``), and the
    settings (``operating_point``, ``memory`` (:meth:`sramsim.MemoryConfig.to_dict`), ``chips``
    (seeds), ``fault_maps`` (their fingerprints, only for maps), ``samples``, ``generator``,
    ``precision``).
    """
    memory = MemoryConfig() if memory is None else memory
    check_precision(precision, device if device is not None else module_device(base))
    chip_seeds, fault_maps = resolve_chips(chips)
    if device is not None:
        for model in (base, generator):
            if model is not None:
                model.to(device)
    deployment = Deployment(base, memory=memory)
    check_fault_maps(deployment, fault_maps, [point])
    deployment.point(point)   # of the memory's technology
    batches = load_batches(dataset, batch_size, module_device(base), preferred_memory_format(base))
    input_sets = [batches] if generator is None else [batches, transform(generator, batches, precision)]
    sample = batches[0][0][:1]
    forwards = {"base": base}
    if generator is not None:
        forwards["with_nf"] = lambda x: base(generator(x))
    models = [base] if generator is None else [base, generator]
    with eval_mode(*models), deployment.quantized():  # each chip then writes only its faults
        ca = clean_accuracies(deployment, input_sets, precision)
        pa = chip_accuracies(deployment, point, fault_maps or chip_seeds, input_sets, progress=progress,
                             precision=precision)
        latency = latencies_ms(forwards, sample, latency_repeats, precision)

    result = {
        "operating_point": point.as_dict(), "memory": memory.to_dict(), "chips": chip_seeds,
        **({} if fault_maps is None else {"fault_maps": [map_fingerprint(m) for m in fault_maps]}),
        "samples": sum(len(y) for _, y in batches), "precision": precision,
        "generator": None, "without_nf": accuracy_summary(ca[0], pa[:, 0]), "with_nf": None,
        "rp": None, "efficiency_ratio": None,
        "latency_ms": {"base": latency["base"], "with_nf": latency.get("with_nf")},
    }
    if generator is not None:
        n_params = generator_parameters(generator)
        with_nf = accuracy_summary(ca[1], pa[:, 1])
        rp = with_nf["pa_mean"] - result["without_nf"]["pa_mean"]
        result.update(
            generator={"name": generator_name or type(generator).__name__, "parameters": n_params},
            with_nf=with_nf, rp=rp, efficiency_ratio=rp / (n_params / 1e6) if n_params else None,
        )
    return result


def format_table(result: dict) -> str:
    """A printable table of an :func:`evaluate` result."""
    point, memory = OperatingPoint(**result["operating_point"]), result_memory(result)
    n = len(result["chips"])
    chips = f"{n} {'fault map' if result.get('fault_maps') else 'chip'}{'' if n == 1 else 's'}"
    lines = [
        f"{point.describe()}, {memory.bits}-bit {memory.storage} weights, {memory.fault_model} faults, "
        f"{memory.layout} layout, {result.get('precision', DEFAULT_PRECISION)} arithmetic, "
        f"{chips}, {result['samples']} samples",
        f"{'':<16}{'CA (%)':>8}{'PA (%)':>18}{'latency (ms)':>15}",
    ]
    rows = [("base model", result["without_nf"], result["latency_ms"]["base"])]
    if result["with_nf"] is not None:
        rows.append((f"+ {result['generator']['name']}", result["with_nf"], result["latency_ms"]["with_nf"]))
    for label, acc, ms in rows:
        pa = f"{acc['pa_mean']:.2f} ± {acc['pa_std']:.2f}"
        lines.append(f"{label:<16}{acc['ca']:>8.2f}{pa:>18}{ms:>15.2f}")
    if result["rp"] is not None:
        ratio = result["efficiency_ratio"]
        per_million = "n/a" if ratio is None else f"{ratio:.2f} points per million generator parameters"
        lines.append(f"RP = {result['rp']:+.2f} points; efficiency ratio = {per_million}")
    return "\n".join(lines)


def settings_from_training(trained: Mapping[str, Any], *, dataset: str | None = None,
                           data_root: str | None = None, image_size: int | None = None) -> dict[str, Any]:
    """``dataset``, ``data_root``, ``image_size``: each as given, else as the generator was
    trained (``trained`` is its metadata from :func:`neuralfuse.checkpoint.load_generator`, or
    {}), else the defaults ("default", no root, the dataset's own size). The training data root and
    image size are kept only for the training dataset. (The memory config: :func:`inherited_memory`.)
    """
    provenance = trained.get("provenance", {})
    dataset = dataset or provenance.get("dataset", "default")
    if dataset == provenance.get("dataset"):
        data_root = data_root if data_root is not None else provenance.get("data_root")
        image_size = image_size if image_size is not None else provenance.get("image_size")
    return {"dataset": dataset, "data_root": data_root, "image_size": image_size}


def inherited_memory(records: Mapping[str, Mapping[str, Any]], **given: Any) -> MemoryConfig:
    """The memory config a command runs under: each field (bits, storage, tech, fault_model,
    layout) as ``given`` (None: not given), else as the runs it builds on recorded it.

    ``records`` maps a name (for messages) to each run's record or metadata: a generator's
    (:func:`neuralfuse.checkpoint.load_generator`) or a base model's checkpoint metadata, read
    by :meth:`sramsim.MemoryConfig.from_record` (records written before memory configs count as
    symmetric storage and today's defaults for what they lack). Runs that recorded different
    values of a field not given raise a ValueError naming the field, the runs and the option that
    settles it.

    >>> inherited_memory({"base.pt": {"bits": 6}}, storage="robust").describe()
    '6-bit robust, stuck-at, arrays, 14nm-512x64'
    """
    configs = {name: MemoryConfig.from_record(record).replace(**given) for name, record in records.items()}
    if not configs:
        return MemoryConfig().replace(**given)
    for field in MEMORY_FIELDS:
        values = {name: getattr(config, field) for name, config in configs.items()}
        if len(set(values.values())) > 1:
            listed = ", ".join(f"{value} in {name}" for name, value in values.items())
            raise ValueError(f"the runs were trained with different {_FIELD_NAMES[field]} ({listed}): "
                             f"give one (--{field.replace('_', '-')}) to run them all under it")
    return next(iter(configs.values()))


_FIELD_NAMES = {"bits": "bit widths", "storage": "storage formats", "tech": "technologies",
                "fault_model": "fault models", "layout": "layouts"}


@dataclass(frozen=True)
class EvaluationPlan:
    """What an evaluation runs on and what names it (:func:`plan_evaluation`): the ``images``,
    the ``chips`` (seeds, or fault maps), the ``settings`` of its result file
    (:func:`neuralfuse.result_files.evaluation_settings`) and where the images came from."""

    images: Dataset
    chips: list[int] | list[FaultMap]
    settings: dict[str, str | None]
    split: str
    dataset: str
    data_root: str | None
    image_size: int | None

    def provenance(self, **paths: Any) -> dict[str, Any]:
        """The ``provenance`` of a result: ``paths`` (base, generator, command, ...) and the data."""
        return {**paths, "dataset": self.dataset, "data_root": self.data_root,
                "image_size": self.image_size, "split": self.split}


SPLITS = ("test", "validation", "calibration")
"""Images and chips an evaluation runs on (see :func:`plan_evaluation`)."""


def evaluation_inputs(base_meta: Mapping[str, Any], *, on: str = "test", chips: int | None = None,
                      first_chip: int = 0, fault_maps: Sequence[FaultMap] | None = None,
                      dataset: str = "default", data_root: str | None = None, image_size: int | None = None,
                      samples: int | None = None) -> tuple[Dataset, list[int] | list[FaultMap]]:
    """(images, chips) that ``on`` names, for the base model of ``base_meta`` (its checkpoint
    metadata): "test" (test images of ``dataset`` on evaluation chips ``first_chip``.., for the
    numbers you report), "validation" (the base model's held-out training images on validation
    chips, for every choice) or "calibration" (those held-out images on the evaluation chips: a
    chip calibrating its own voltage). ``chips`` counts the chips (default 10); ``fault_maps``
    replaces them by measured chips (test or calibration only). ``samples``: a fixed random
    subset of that many images. Bad combinations raise a ValueError.
    """
    if on not in SPLITS:
        raise ValueError(f"on={on!r} is not valid: use one of {', '.join(SPLITS)}")
    if on == "validation" and first_chip:
        raise ValueError(f"--first-chip picks evaluation chips (got {first_chip}): leave it out with "
                         "validation images, which run on validation chips")
    if fault_maps is not None:
        if chips is not None or first_chip:
            raise ValueError("fault maps are the chips: give them without a chip count or first chip")
        if on == "validation":
            raise ValueError("fault maps are evaluation chips: use them on test or calibration images")
        resolve_chips(fault_maps)   # distinct seeds
        chosen = list(fault_maps)
    else:
        chips = 10 if chips is None else chips
        chosen = validation_chips(chips) if on == "validation" else evaluation_chips(chips, first=first_chip)
    if on == "test":
        images = load_dataset(dataset, data_root, split="test", image_size=image_size)
    else:
        images = base_validation_set(load_dataset(dataset, data_root, split="train", image_size=image_size),
                                     base_meta)
    return fixed_subset(images, samples), chosen


def plan_evaluation(base_meta: Mapping[str, Any], *, point: OperatingPoint, memory: MemoryConfig,
                    on: str = "test", dataset: str = "default", data_root: str | None = None,
                    image_size: int | None = None, precision: str = DEFAULT_PRECISION,
                    **inputs: Any) -> EvaluationPlan:
    """The images and chips of an evaluation at ``point`` under ``memory``
    (:func:`evaluation_inputs`: ``on``, the data, and ``inputs``: ``chips``, ``first_chip``,
    ``fault_maps``, ``samples``) and the settings naming its result."""
    images, chips = evaluation_inputs(base_meta, on=on, dataset=dataset, data_root=data_root,
                                      image_size=image_size, **inputs)
    seeds, maps = resolve_chips(chips)
    settings = evaluation_settings(point=point, memory=memory, chips=seeds, samples=len(images), split=on,
                                   dataset=dataset, image_size=image_size, precision=precision,
                                   fault_maps=None if maps is None else [map_fingerprint(m) for m in maps])
    return EvaluationPlan(images, chips, settings, on, dataset, data_root, image_size)


def load_evaluations(paths: Sequence[str | os.PathLike[str]]) -> dict[str, dict]:
    """The :func:`evaluate` results saved as JSON at ``paths``, by label, for :func:`comparison_table`.

    A path is a JSON file or a training run directory, whose ``evaluation-*.json`` files (written
    by ``neuralfuse evaluate``) are all read; those are labelled "RUN_DIR POINT-BITS-FAULTS",
    other files by their stem. A directory without such files, or a file that is not an
    evaluation result, raises a ValueError naming it.
    """
    results = {}
    for path in map(Path, paths):
        files = sorted(path.glob(f"{RESULT_PREFIX}*.json")) if path.is_dir() else [path]
        if not files:
            raise ValueError(f"{str(path)!r} holds no evaluation-*.json: run `neuralfuse evaluate "
                             f"--run {path}` first")
        for file in files:
            label = (f"{file.resolve().parent.name} {file.stem.removeprefix(RESULT_PREFIX)}"
                     if file.name.startswith(RESULT_PREFIX) else file.stem)
            results[label] = read_evaluation(file)
    return results


def read_evaluation(path: str | os.PathLike[str]) -> dict:
    """An :func:`evaluate` result saved as JSON at ``path``; one saved in a training run directory
    (as ``evaluation-*.json``) gets the run's training settings under ``"training"`` (with
    ``fine_tune: True`` for a run that started from another's generator). A file that
    is not an evaluation result raises a ValueError naming it."""
    path = Path(path)
    try:
        result = json.loads(path.read_text())
        if not isinstance(result, dict) or "without_nf" not in result:
            raise ValueError("it has no 'without_nf' entry")
    except ValueError as err:
        raise ValueError(f"{str(path)!r} is not an evaluation result of `neuralfuse evaluate` ({err})") from err
    record_path = path.parent / RUN_RECORD
    if path.name.startswith(RESULT_PREFIX) and record_path.is_file():
        record = json.loads(record_path.read_text())
        training = dict(record["config"])
        if record.get("init_fingerprint"):   # a fine-tune: another recipe than the same from scratch
            training["fine_tune"] = True
        result["training"] = training
    return result


def comparison_table(results: dict[str, dict]) -> pd.DataFrame:
    """One row per :func:`evaluate` result (keyed by a label): the settings and the figures side by side.

    Columns: ``label``, ``generator``, ``parameters_m`` (millions), ``point``, ``bits``,
    ``storage``, ``fault_model``, ``layout`` (of the memory config:
    :func:`neuralfuse.result_files.result_memory`), ``precision``
    (``"fp32"`` for results saved before precisions), ``chips``,
    ``first_chip``, ``samples``, ``split``, ``dataset`` (see
    :func:`neuralfuse.result_files.settings_of`), ``ca``, ``pa_mean``, ``pa_std`` (base model alone), ``nf_ca``, ``nf_pa_mean``,
    ``nf_pa_std`` (with NeuralFuse), ``rp``, ``efficiency_ratio``, and for results read from a
    training run directory (:func:`load_evaluations`) its ``seed`` and ``recipe``: the run's
    training settings but the seed and the epoch counts, as ``key=value`` pairs.
    """
    rows = []
    for label, result in results.items():
        generator, alone, nf = result["generator"] or {}, result["without_nf"], result["with_nf"] or {}
        training = result.get("training") or {}
        settings, memory = settings_of(result), result_memory(result)
        rows.append({
            "label": label, "generator": generator.get("name"),
            "seed": training.get("seed"), "recipe": _recipe(training),
            "parameters_m": generator["parameters"] / 1e6 if generator else None,
            "point": OperatingPoint(**result["operating_point"]).describe(), "bits": memory.bits,
            "storage": memory.storage, "fault_model": memory.fault_model, "layout": memory.layout,
            "precision": result.get("precision", DEFAULT_PRECISION),
            "chips": len(result["chips"]), "first_chip": result["chips"][0], "samples": result["samples"],
            "split": settings["split"], "dataset": settings["dataset"], "ca": alone["ca"], "pa_mean": alone["pa_mean"], "pa_std": alone["pa_std"],
            "nf_ca": nf.get("ca"), "nf_pa_mean": nf.get("pa_mean"), "nf_pa_std": nf.get("pa_std"),
            "rp": result["rp"], "efficiency_ratio": result["efficiency_ratio"],
        })
    return pd.DataFrame(rows)


EVALUATION_COLUMNS = ("generator", "point", "bits", "storage", "fault_model", "layout", "precision", "chips",
                      "first_chip", "samples", "split", "dataset")
"""The columns of :func:`comparison_table` that say what was evaluated (generator and settings)."""

# Settings of a training run that do not change what it learns, or that a rerun may change.
_NOT_RECIPE = ("seed", "epochs", "checkpoint_every")


def _recipe(training: Mapping[str, Any]) -> str | None:
    """A training run's settings but its seed and epoch counts, as sorted ``key=value`` pairs (the
    memory config's fields among them, as runs recorded them before memory configs)."""
    if not training:
        return None
    memory, rest = split_memory(training)
    settings = {**rest, **memory.to_dict()}
    return " ".join(f"{k}={v}" for k, v in sorted(settings.items()) if k not in _NOT_RECIPE)


def seed_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of :func:`comparison_table` that differ only in their training seed, one row per
    group: the same generator, recipe and evaluation (point, bits, fault model, layout, precision,
    chips, first chip, samples, split, dataset). Rows without a recipe (not read from a run directory)
    stay alone.

    Columns: those settings, ``runs`` (the labels), ``seeds``, ``n_seeds``, the base model's ``ca``
    and ``pa_mean``, then over the seeds the mean, sample standard deviation (``_sd``, NaN for one
    seed), minimum and maximum of ``nf_ca``, ``nf_pa_mean`` and ``rp``, and ``ca_drop``
    (``ca`` minus the mean ``nf_ca``).
    """
    keys = [*EVALUATION_COLUMNS, "recipe"]
    table = table.assign(group=table["recipe"].fillna(table["label"]))   # alone without a recipe
    rows = []
    for _, group in table.groupby([*keys, "group"], sort=False, dropna=False):
        row = {key: group[key].iloc[0] for key in [*keys, "group"]}
        row.update(runs=", ".join(group["label"]), seeds=", ".join(f"{s:g}" for s in group["seed"].dropna()),
                   n_seeds=len(group), ca=group["ca"].mean(), pa_mean=group["pa_mean"].mean())
        for column in ("nf_ca", "nf_pa_mean", "rp"):
            values = group[column].astype(float)
            row.update({column: values.mean(), f"{column}_sd": values.std(ddof=1),
                        f"{column}_min": values.min(), f"{column}_max": values.max()})
        row["ca_drop"] = row["ca"] - row["nf_ca"]
        rows.append(row)
    return pd.DataFrame(rows).drop(columns="group")
