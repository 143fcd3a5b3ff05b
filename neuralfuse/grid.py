"""Training grids: many EOPM runs from one small TOML spec, each trained, then evaluated.

A spec names the base model and the data, the settings every run shares, and the axes whose
cartesian product gives the runs: any :class:`neuralfuse.eopm.TrainConfig` field, named as the
`neuralfuse train` option (``lambda`` for ``--lambda``, ``chips_per_step``; the field names
``lam`` and ``n_chips`` that run records use are read too); the memory config's fields ``bits``,
``storage``, ``tech``, ``fault_model`` and ``layout`` are given flat, and those not given are the
base model's, as ``neuralfuse train`` inherits them::

    base = "r18.pt"              # relative paths are relative to the spec file
    dataset = "cifar10"
    data_root = "~/data/cifar10"
    # image_size = 64            # only for dataset = "folder": the side of its square images

    [train]                      # shared by every run
    epochs = 20
    train_subset = 10000
    # precision = "bf16"         # arithmetic of training and evaluation (neuralfuse.precision)
    # storage = "robust"         # how the weights are stored (sramsim.MemoryConfig)

    [grid]                       # one list per axis: 2 x 2 x 2 = 8 runs
    generator = ["UNetL", "UNetS"]
    ber = [0.01, 0.03]           # or voltage = [...]
    lambda = [1.0, 5.0]          # layout = ["arrays", "neuralfuse-code"] would compare layouts

    [evaluate]                   # after training, at each run's training point
    chips = 10
    samples = 2000               # a fixed subset of the test split (default: all)

    spec = load_spec("grid.toml")
    run_grid(spec, "grid-out")                         # one run after another, here
    run_grid(spec, "grid-out", ray={"address": None})  # one Ray task per run

Every run is an ordinary run directory ``OUT/runs/<name>`` (named after its values on the axes),
so an interrupted grid resumes run by run from each run's last checkpoint when started again, and
a retried Ray task ends with the same generator as an uninterrupted run. A finished run is
evaluated once into ``evaluation-<settings>.json`` (the file `neuralfuse evaluate` writes,
:func:`neuralfuse.result_files.result_file`; each run is evaluated at the precision it trained at);
``OUT/compare.csv`` tables them all (as `neuralfuse compare OUT/runs/*`).
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from characterization.atomic import atomic_path, write_json
from characterization.validation import check_scalar
from neuralfuse.toml_files import read_toml

TOP_LEVEL = {"base", "dataset", "data_root", "image_size", "train", "grid", "evaluate"}
EVALUATE_KEYS = {"chips", "samples", "batch_size"}
OPTION_NAMES = {"lam": "lambda", "n_chips": "chips_per_step"}
"""TrainConfig fields that a spec names as the `neuralfuse train` option does (field -> spec key)."""


class GridSpecError(ValueError):
    """A grid spec that cannot be run: unreadable, unknown keys, or settings a run refuses."""


@dataclass(frozen=True)
class GridRun:
    """One run of a grid: its directory name and its complete training settings."""

    name: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class GridSpec:
    """A parsed spec (see the module docstring); ``runs`` is the cartesian product, in spec order."""

    base: Path
    dataset: str
    data_root: Path | None
    image_size: int | None
    train: dict[str, Any]
    grid: dict[str, list]
    evaluate: dict[str, Any]
    runs: tuple[GridRun, ...]

    def as_dict(self) -> dict[str, Any]:
        """Plain values for ``grid.json``."""
        return {"base": str(self.base), "dataset": self.dataset,
                "data_root": None if self.data_root is None else str(self.data_root),
                "image_size": self.image_size, "train": self.train, "grid": self.grid, "evaluate": self.evaluate,
                "runs": [run.name for run in self.runs]}


def load_spec(path: str | Path) -> GridSpec:
    """Read and check the spec at ``path``; every run's settings are validated before any run starts."""
    return parse_spec(read_toml(path, "grid spec", GridSpecError), Path(path).parent)


def parse_spec(raw: Mapping[str, Any], folder: str | Path = ".") -> GridSpec:
    """A :class:`GridSpec` from the TOML contents ``raw``; relative paths are taken from ``folder``."""
    from neuralfuse.eopm import TrainConfig
    from sramsim.memory import FIELDS as MEMORY_FIELDS

    unknown = set(raw) - TOP_LEVEL
    if unknown:
        raise GridSpecError(f"unknown grid spec key(s) {sorted(unknown)}: use {sorted(TOP_LEVEL)}")
    if "base" not in raw or "grid" not in raw:
        raise GridSpecError("a grid spec needs 'base' (a base-model checkpoint) and a [grid] table")
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"memory"} | set(MEMORY_FIELDS)
    train = _train_keys(raw.get("train", {}), "[train]", fields)
    grid = _train_keys(raw["grid"], "[grid]", fields)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise GridSpecError(f"[grid] {key} = {values!r} is not valid: give a non-empty list of values")
    both = set(train) & set(grid)
    if both:
        raise GridSpecError(f"{sorted(both)} set in both [train] and [grid]: give each setting once")
    evaluate = dict(raw.get("evaluate", {}))
    if set(evaluate) - EVALUATE_KEYS:
        raise GridSpecError(f"unknown [evaluate] key(s) {sorted(set(evaluate) - EVALUATE_KEYS)}: "
                            f"use {sorted(EVALUATE_KEYS)}")
    for key, value in evaluate.items():
        _positive_int(value, f"[evaluate] {key}")
    image_size = raw.get("image_size")
    if image_size is not None:
        _positive_int(image_size, "image_size",
                      "the side in pixels of a 'folder' dataset's square images (an integer >= 1)")
    folder = Path(folder)
    data_root = raw.get("data_root")
    runs = []
    for values in itertools.product(*grid.values()):
        settings = {**train, **dict(zip(grid, values))}
        try:
            TrainConfig.from_dict(settings).point()
        except (TypeError, ValueError) as err:
            raise GridSpecError(f"run {dict(zip(grid, values))} is not valid: {err}") from None
        runs.append(GridRun(run_name(dict(zip(grid, values))), settings))
    names = [run.name for run in runs]
    if len(set(names)) != len(names):
        raise GridSpecError("two runs would share a directory name: give distinct values on each axis")
    return GridSpec(base=(folder / Path(raw["base"]).expanduser()).resolve(),
                    dataset=str(raw.get("dataset", "default")),
                    data_root=None if data_root is None else (folder / Path(data_root).expanduser()).resolve(),
                    image_size=image_size,
                    train=train, grid=grid, evaluate=evaluate, runs=tuple(runs))


def _positive_int(value: Any, name: str, allowed: str | None = None) -> None:
    """Refuse ``value`` unless it is an integer >= 1, as a :class:`GridSpecError`."""
    try:
        check_scalar(value, name, int, min_val=1, allowed=allowed)
    except ValueError as err:
        raise GridSpecError(str(err)) from None


def _train_keys(table: Any, where: str, fields: set[str]) -> dict[str, Any]:
    """``table``'s settings keyed by TrainConfig field; a spec may name a field as the train option
    does (:data:`OPTION_NAMES`), but not both ways."""
    if not isinstance(table, Mapping):
        raise GridSpecError(f"{where} must be a table of settings")
    spelled = {field: OPTION_NAMES.get(field, field) for field in fields}
    field_of = {**{key: field for field, key in spelled.items()}, **{field: field for field in fields}}
    unknown = set(table) - set(field_of)
    if unknown:
        raise GridSpecError(f"unknown {where} setting(s) {sorted(unknown)}: use {', '.join(sorted(spelled.values()))}")
    both = [field for field, key in OPTION_NAMES.items() if field in table and key in table]
    if both:
        raise GridSpecError(f"{where} gives both {both[0]} and {OPTION_NAMES[both[0]]}: give "
                            f"{OPTION_NAMES[both[0]]} only")
    return {field_of[key]: value for key, value in table.items()}


def run_name(values: Mapping[str, Any]) -> str:
    """A directory name for a run from its values on the axes, e.g. ``UNetS-ber0.01-lam5-seed0``.

    >>> run_name({"generator": "UNetS", "ber": 0.01, "lam": 5.0})
    'UNetS-ber0.01-lam5'
    """
    parts = []
    for key, value in values.items():
        text = f"{value:g}" if isinstance(value, float) else str(value)
        parts.append(text if key == "generator" else f"{key}{text}")
    return re.sub(r"[^A-Za-z0-9._+-]", "_", "-".join(parts)) or "run"


def run_one(spec: GridSpec, run: GridRun, out: str | Path, device: str = "cpu",
            progress: bool = False) -> Path:
    """Train ``run`` into ``out/runs/<name>`` (resuming it), evaluate it once; return the evaluation file."""
    from neuralfuse.checkpoint import load_base_model, load_generator
    from neuralfuse.data import load_dataset
    from neuralfuse.eopm import TrainConfig, base_split, train
    from neuralfuse.evaluation import evaluate, inherited_memory, plan_evaluation
    from neuralfuse.plots import write_learning_curve
    from neuralfuse.result_files import result_file
    from sramsim.memory import FIELDS as MEMORY_FIELDS

    run_dir = Path(out) / "runs" / run.name
    base, meta = load_base_model(spec.base)
    split = base_split(meta, spec.dataset, val_size=run.settings.get("val_size"),
                       split_seed=run.settings.get("split_seed"))
    memory = inherited_memory({str(spec.base): meta}, **{k: run.settings.get(k) for k in MEMORY_FIELDS})
    settings = {k: v for k, v in run.settings.items() if k not in MEMORY_FIELDS}
    config = TrainConfig(**{**settings, **split}, memory=memory)
    point = config.point()
    data_root = None if spec.data_root is None else str(spec.data_root)
    plan = plan_evaluation(meta, point=point, memory=memory, chips=spec.evaluate.get("chips", 10),
                           dataset=spec.dataset, data_root=data_root, image_size=spec.image_size,
                           samples=spec.evaluate.get("samples"), precision=config.precision)
    result_path = result_file(run_dir, plan.settings)
    if result_path.is_file():
        return result_path
    command = f"neuralfuse grid (run {run.name})"
    provenance = {"base": str(spec.base), "surrogates": [], "init_generator": None,
                  "dataset": spec.dataset, "data_root": data_root, "image_size": spec.image_size,
                  "command": command}
    train(run_dir, config, base, load_dataset(spec.dataset, data_root, split="train", image_size=spec.image_size),
          provenance=provenance, progress=progress, device=device, on_epoch=write_learning_curve)
    generator, trained = load_generator(run_dir, base=base)
    result = evaluate(base, plan.images, point=point, generator=generator, generator_name=trained["generator"],
                      chips=plan.chips, memory=memory, batch_size=spec.evaluate.get("batch_size", 500),
                      latency_repeats=5, device=device, precision=config.precision)
    result["provenance"] = plan.provenance(base=str(spec.base), generator=str(run_dir.resolve()), command=command)
    write_json(result_path, result)
    return result_path


def run_grid(spec: GridSpec, out: str | Path, *, device: str = "cpu", ray: Mapping[str, Any] | None = None,
             progress: bool = False) -> pd.DataFrame:
    """Run every run of ``spec`` into ``out`` and return the comparison table (also ``out/compare.csv``).

    Without ``ray`` the runs go one after another in this process on ``device``; with ``ray``
    (keyword arguments of :func:`neuralfuse.distributed.map_tasks`: ``address``,
    ``cpus_per_task``, ``gpus_per_task``) each run is one Ray task, retried if its worker dies.
    """
    from neuralfuse.evaluation import comparison_table, read_evaluation

    out = Path(out)
    record_path = out / "grid.json"
    if record_path.is_file():
        if json.loads(record_path.read_text()) != json.loads(json.dumps(spec.as_dict())):
            raise GridSpecError(f"{str(out)!r} holds another grid: give a new output folder, or the same spec")
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise GridSpecError(f"{str(out)!r} exists and is not a grid folder: choose a new or empty folder")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    write_json(record_path, spec.as_dict())
    if ray is None:
        from tqdm.auto import tqdm

        paths = [run_one(spec, run, out, device, progress)
                 for run in tqdm(spec.runs, desc="grid", unit="run", disable=not progress)]
    else:
        from neuralfuse.distributed import map_tasks

        paths = map_tasks(_run_task, [(spec, run, str(out.resolve())) for run in spec.runs],
                          progress=progress, desc="grid (ray)", **ray)
    results = {run.name: read_evaluation(p) for run, p in zip(spec.runs, paths)}
    table = comparison_table(results)
    with atomic_path(out / "compare.csv") as tmp:
        table.to_csv(tmp, index=False)
    return table


def _run_task(spec: GridSpec, run: GridRun, out: str, device: str) -> str:
    """:func:`run_one` as a Ray task (see :func:`neuralfuse.distributed.map_tasks`)."""
    return str(run_one(spec, run, out, device))
