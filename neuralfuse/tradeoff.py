"""Voltage sweeps: accuracy and energy of a base model, alone and behind NeuralFuse, over voltages.

A sweep measures every *configuration* (the base model alone, named ``"base"``, and the base model
behind each generator) at every supply voltage on every evaluation chip, and turns it into one tidy
table, one row per (configuration, voltage):

    table = sweep(base, test_set, voltages=parse_voltages("0.80:1.00:0.02"),
                  generators={"UNetS": generator}, chips=10, out_dir="sweep")
    operating_points(table, min_accuracy=80.0)["best"]
    operating_points(table, 80.0, "quantile:0.1", per_chip=load_chips("sweep"))   # per-chip guarantee

A *BER sweep* (``bers=parse_bers("0.01,0.02,0.05")``, the paper's axis) draws faults at exactly
those BERs, each at its voltage by the technology. The weights are stored as one
:class:`sramsim.MemoryConfig` says (``memory=``: bits, storage format, technology, fault model,
layout), and the chips may be measured ones: fault maps, each holding its chip's faults up to its
own rate (``chips=[load_fault_map(path), ...]``; a map that does not fit the model or holds too low
a rate for the lowest voltage is refused before any work). An accuracy criterion
(:mod:`neuralfuse.criteria`: the mean over chips, a chip quantile or a yield) decides which rows
keep an accuracy floor; every criterion but the mean reads the per-chip table ``chips.csv``.

Columns: ``config``, ``generator`` (its architecture, "" for the base model), ``voltage``
(× Vmin), ``ber``, ``chips``, ``ca`` (clean accuracy, %), ``pa_mean``/``pa_std``/``pa_sem``
(perturbed accuracy over chips, %: mean, sample std, standard error), ``accesses_base`` and
``accesses_generator`` (weight-memory row accesses per input, the paper's T.W.M.A.),
``energy_relative`` (weight-memory energy per input over that of the base model alone at Vmin)
and ``energy_saving`` (Eq. 6; the generator runs at nominal voltage, Vmin, without faults).

Work is shared where it can be: the generator's output F(x) is computed once per configuration,
the base model is quantized and laid out once (:class:`sramsim.Deployment`), and the faults of one
(chip, voltage) serve every configuration. Fault maps are nested across voltages on each chip, so
each chip's accuracy falls, in expectation, as the voltage falls.

With ``out_dir`` the sweep is resumable. The folder holds

- ``sweep.json``: what was asked (voltages, or ``bers`` for a BER sweep, chips and, for measured
  chips, ``fault_maps``: their fingerprints, ``split``: test or validation images, ``memory``: the
  memory config, arithmetic precision (:mod:`neuralfuse.precision`), fingerprints of the models
  and the data) plus versions and the command; rerunning with other arguments is an error (a
  sweep recorded before memory configs, with flat ``bits``, ``tech``, ``fault_model`` and
  ``layout``, counts as that config with symmetric storage: :func:`load_record`),
  except that a rerun may add generators (it measures only them, at the points already there; it
  must name every generator the folder holds, each the same model as before) and voltages, or
  BERs to a BER sweep (it measures only the new points; it must give every one the folder holds);
- ``points/``: one small JSON per finished (voltage, chip), written atomically as it completes
  (``v0.8300-chip3.json``; in a BER sweep ``ber0.0100000000-chip3.json``);
- ``sweep.csv`` (and ``sweep.parquet`` when pyarrow is installed), ``chips.csv`` (one row per
  configuration, voltage and chip): assembled from the points at the end.

Rerunning the same sweep computes only the missing points and ends with the same tables.

The measurements split into one :class:`ChipTask` per chip, covering all of that chip's missing
voltages and every configuration (so the faults of one (chip, voltage) are drawn once and serve
every configuration): :func:`measure_chip` runs one in any process, given the
:class:`SweepWork` every task shares, and writes the same point files. :func:`run_chips` runs
them one after another here (the default); ``neuralfuse.distributed.ray_runner`` runs them as Ray
tasks. A sweep started one way can be finished the other way.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

import characterization
from characterization.atomic import atomic_path, write_json
from neuralfuse.checkpoint import model_fingerprint
from neuralfuse.criteria import MEAN, Criterion, criterion_scores, parse_criterion
from neuralfuse.chips import ChipSpec, map_fingerprint, resolve_chips
from neuralfuse.devices import module_device
from neuralfuse.memory_format import preferred_memory_format
from neuralfuse.precision import DEFAULT_PRECISION, check_precision
from neuralfuse.evaluation import (Batch, check_fault_maps, chip_accuracies, clean_accuracies,
                                   load_batches, transform)
from neuralfuse.runs import SESSION_KEYS, start_run, with_provenance
from sramsim.accounting import energy_saving, weight_accesses
from sramsim.deployment import Deployment
from sramsim.faults import FaultMap
from sramsim.layers import STORED_LAYERS
from sramsim.memory import FIELDS as MEMORY_FIELDS, MemoryConfig, recorded_memory
from sramsim.operating_point import MAX_BER, OperatingPoint, check_voltage_or_ber

BASE = "base"
"""Name of the configuration without a generator."""
SPLITS = ("test", "validation")
"""The images a sweep measures: test images, or the base model's held-out validation images."""
SWEEP_COLUMNS = ("config", "generator", "voltage", "ber", "chips", "ca", "pa_mean", "pa_std", "pa_sem",
           "accesses_base", "accesses_generator", "energy_relative", "energy_saving")
VOLTAGE_DECIMALS = 4
"""Voltages are rounded to this many decimals (steps of 0.0001 Vmin) so they name files exactly."""
BER_DECIMALS = 10
"""The BERs of a BER sweep are rounded to this many decimals, for the same reason."""
SWEEP_FORMAT = "neuralfuse.sweep"
RECORD_DEFAULTS = {"bers": None, "split": "test", "precision": DEFAULT_PRECISION, "fault_maps": None}
"""What a ``sweep.json`` written before BER sweeps, splits, precisions or fault maps existed stands for."""


class SweepError(ValueError):
    """A sweep folder that cannot be used: other arguments, or not a sweep folder at all."""


@dataclass(frozen=True)
class ChipTask:
    """One chip of a sweep and the operating points (voltages) still to measure on it."""

    chip: int
    points: tuple[OperatingPoint, ...]


@dataclass
class SweepWork:
    """What every :class:`ChipTask` of a sweep shares: the base model, each configuration's inputs
    (F(x) already computed, ``"base"`` first), how the model is stored (``memory``), the folder
    where point files go (None: results are only returned), the arithmetic ``precision`` and, for
    measured chips, their fault maps by chip seed."""

    base: nn.Module
    input_sets: dict[str, list[Batch]]
    memory: MemoryConfig
    points_dir: Path | None = None
    precision: str = DEFAULT_PRECISION
    fault_maps: dict[int, FaultMap] = field(default_factory=dict)
    names: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.names = list(self.input_sets)

    def deployment(self) -> Deployment:
        """A :class:`sramsim.Deployment` of the base model with this sweep's memory config."""
        return Deployment(self.base, memory=self.memory)

    def chip(self, seed: int) -> int | FaultMap:
        """The chip of ``seed``: its fault map, for measured chips, else the seed."""
        return self.fault_maps.get(seed, seed)

    def point_path(self, point: OperatingPoint, chip: int) -> Path:
        """The point file of (point, chip) in ``points_dir``."""
        return self.points_dir / f"{_point_key(point, chip)}.json"

    def saved(self, point: OperatingPoint, chip: int) -> dict[str, float]:
        """What the point file of (point, chip) holds (nothing when there is none)."""
        path = None if self.points_dir is None else self.point_path(point, chip)
        return json.loads(path.read_text()) if path is not None and path.is_file() else {}

    def missing(self, values: Mapping[str, float]) -> list[str]:
        """The configurations of this work that ``values`` (one point's) lacks."""
        return [name for name in self.names if name not in values]

    def to(self, device: torch.device | str) -> SweepWork:
        """This work with the base model and the inputs on ``device`` (itself if they are there;
        else a copy of the model: this one stays where it is)."""
        device = torch.device(device)
        if module_device(self.base) == device:
            return self
        moved = {name: [(x.to(device), y.to(device)) for x, y in batches]
                 for name, batches in self.input_sets.items()}
        return dataclasses.replace(self, base=copy.deepcopy(self.base).to(device), input_sets=moved)


Measured = dict[tuple[OperatingPoint, int], dict[str, float]]
"""Per-configuration PA (%) keyed by (operating point, chip)."""
Runner = Callable[[SweepWork, Sequence[ChipTask], bool], Measured]
"""Runs the chip tasks of a sweep (``runner(work, tasks, progress)``) and returns what they measured."""


def measure_chip(work: SweepWork, task: ChipTask, deployment: Deployment,
                 on_point: Callable[[OperatingPoint, int], None] | None = None) -> Measured:
    """PA of every configuration at every point of ``task`` on its chip, saved point by point.

    ``deployment`` is ``work.deployment()``, ideally entered in ``quantized()`` (then each point
    writes only its faulty weights). Each finished point is written atomically to
    ``work.points_dir`` (when set) and reported to ``on_point(point, chip)``. What a point file
    already holds (an earlier, interrupted run of the same task, or a sweep that is being extended
    with more generators) is read, not measured again: only the configurations it lacks are.
    """
    measured = {}
    for point in task.points:
        values = work.saved(point, task.chip)
        missing = work.missing(values)
        if missing:
            inputs = [work.input_sets[name] for name in missing]
            pa = chip_accuracies(deployment, point, [work.chip(task.chip)], inputs, precision=work.precision)
            values.update(zip(missing, pa[0].tolist()))
            if work.points_dir is not None:
                write_json(work.point_path(point, task.chip), values)
        measured[point, task.chip] = values
        if on_point is not None:
            on_point(point, task.chip)
    return measured


def run_chips(work: SweepWork, tasks: Sequence[ChipTask], progress: bool = False) -> Measured:
    """Run ``tasks`` one after another in this process (the default :data:`Runner`)."""
    bar = tqdm(total=sum(len(t.points) for t in tasks), desc="sweep", unit="point",
               disable=not progress, dynamic_ncols=True)
    deployment, measured = work.deployment(), {}
    with bar, deployment.quantized():  # each chip then only rewrites its faulty weights
        for task in tasks:
            measured.update(measure_chip(work, task, deployment, lambda point, chip: bar.update()))
    return measured


def parse_voltages(text: str) -> tuple[float, ...]:
    """Voltages (× Vmin) from ``"start:stop:step"`` (both ends included) or a list ``"0.9,0.85"``.

    Returns distinct voltages from the highest to the lowest, the order a sweep visits them. An
    empty, reversed (start > stop) or non-positive-step range raises a ValueError naming it.

    >>> parse_voltages("0.90:1.00:0.05")
    (1.0, 0.95, 0.9)
    >>> parse_voltages("0.83, 1")
    (1.0, 0.83)
    """
    values = _parse_range(text, "voltage", "0.80:1.00:0.01", "0.83,0.9,1.0", VOLTAGE_DECIMALS)
    if any(v <= 0 for v in values):
        raise ValueError(f"voltages {text!r} must be positive numbers (in units of Vmin)")
    return tuple(sorted(values, reverse=True))


def parse_bers(text: str) -> tuple[float, ...]:
    """Bit-error rates from ``"start:stop:step"`` (both ends included) or a list ``"0.01,0.02"``,
    as :func:`parse_voltages` reads voltages; each must lie in (0, 0.5].

    Returns distinct BERs from the lowest to the highest (the highest voltage first, the order a
    sweep visits them), rounded to :data:`BER_DECIMALS` decimals.

    >>> parse_bers("0.01:0.03:0.01")
    (0.01, 0.02, 0.03)
    """
    values = _parse_range(text, "BER", "0.01:0.05:0.01", "0.01,0.02,0.05", BER_DECIMALS)
    if any(not 0 < b <= MAX_BER for b in values):
        raise ValueError(f"BERs {text!r} must be fractions of faulty cells in (0, {MAX_BER}], e.g. 0.01 for 1%")
    return tuple(sorted(values))


def _parse_range(text: str, what: str, range_example: str, list_example: str, decimals: int) -> set[float]:
    """The distinct finite numbers (rounded to ``decimals``) of a ``START:STOP:STEP`` range or a
    comma-separated list of ``what``; a ValueError naming ``text`` for anything else."""
    spec = text.strip()
    try:
        if ":" in spec:
            start, stop, step = (float(part) for part in spec.split(":"))
        else:
            values = [float(part) for part in spec.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{text!r} is not a {what} range: write START:STOP:STEP (e.g. {range_example}) "
                         f"or a comma-separated list (e.g. {list_example})") from None
    if ":" in spec:
        if not all(map(math.isfinite, (start, stop, step))) or step <= 0:
            raise ValueError(f"{what} range {text!r} needs a positive step")
        if start > stop:
            raise ValueError(f"{what} range {text!r} is reversed: write it from low to high, "
                             f"e.g. {stop:g}:{start:g}:{step:g}")
        count = math.floor((stop - start) / step + 1e-9) + 1
        values = [start + i * step for i in range(count)]
    if not values:
        raise ValueError(f"{what} list {text!r} is empty")
    rounded = {round(v, decimals) for v in values}
    if not all(map(math.isfinite, rounded)):
        raise ValueError(f"{what}s {text!r} must be finite numbers")
    return rounded


def sweep(base: nn.Module, dataset: Dataset, voltages: Sequence[float] | None = None, *,
          bers: Sequence[float] | None = None,
          generators: Mapping[str, nn.Module] | None = None, chips: ChipSpec = 10,
          split: str = "test", memory: MemoryConfig | None = None,
          batch_size: int = 500, out_dir: str | Path | None = None,
          provenance: Mapping[str, Any] | None = None, progress: bool = False,
          device: torch.device | str | None = None, runner: Runner | None = None,
          precision: str = DEFAULT_PRECISION) -> pd.DataFrame:
    """Measure ``base`` alone and behind each generator at ``voltages`` (or ``bers``) on ``chips``.

    ``generators`` maps configuration names to generators (nn.Modules computing F(x)); ``voltages``
    are in units of Vmin and must lie in the technology's characterized range. A *BER sweep* gives
    ``bers`` instead (exactly one of the two): faults are drawn at exactly those BERs, the
    ``voltage`` column holds the voltage of each BER by the technology (unrounded, for the energy),
    ``sweep.json`` records ``bers`` and its point files are named by BER, so a BER sweep and a
    voltage sweep never resume one another. ``chips`` is a count K (evaluation chips 0..K-1),
    explicit chip seeds (:mod:`neuralfuse.chips`) or fault maps (measured chips, named by their
    seeds; each must hold the faults of the highest BER swept); ``split`` names the images
    ``dataset`` holds ("test", or "validation" for the base model's held-out images), recorded;
    ``memory`` (default ``MemoryConfig()``) is how the weights are stored, recorded in
    ``sweep.json``; ``voltages`` are of its technology. Returns the table
    described in the module docstring. With ``out_dir``, every finished point is saved there and
    a rerun resumes (see the module docstring); ``provenance`` (plain values such as checkpoint
    paths and the ``command``) is recorded in ``sweep.json``. ``device`` (default: where ``base``
    is) holds the models, which are moved there, and the data. ``runner`` runs the chip tasks
    (default :func:`run_chips`; see ``neuralfuse.distributed.ray_runner``). Every forward pass
    runs at ``precision`` (:mod:`neuralfuse.precision`), recorded in ``sweep.json``.
    """
    generators = dict(generators or {})
    check_voltage_or_ber(voltages, bers, ("voltages", "bers"))
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not valid: use one of {', '.join(SPLITS)}")
    memory = MemoryConfig() if memory is None else memory
    tech = memory.tech
    model = characterization.load(tech)
    if bers is None:
        voltages = tuple(sorted({round(float(v), VOLTAGE_DECIMALS) for v in voltages}, reverse=True))
        point_bers = np.atleast_1d(model.ber(np.array(voltages))).tolist() if voltages else []
        points = [OperatingPoint(ber=b, voltage=v, tech=tech) for v, b in zip(voltages, point_bers)]
    else:
        bers = tuple(sorted({round(float(b), BER_DECIMALS) for b in bers}))
        voltages = tuple(np.atleast_1d(model.voltage_at_ber(np.array(bers))).tolist() if bers else [])
        points = [OperatingPoint(ber=b, tech=tech) for b in bers]
    if not points:
        raise ValueError("no voltages to sweep")
    voltage_of = dict(zip(points, voltages))
    if BASE in generators:
        raise ValueError(f"{BASE!r} names the base model alone: give the generator another name")
    check_precision(precision, device if device is not None else module_device(base))
    seeds, fault_maps = resolve_chips(chips)
    if device is not None:
        for network in (base, *generators.values()):
            network.to(device)
    if fault_maps is not None:
        check_fault_maps(Deployment(base, memory=memory), fault_maps, points)

    batches = load_batches(dataset, batch_size, module_device(base), preferred_memory_format(base))
    input_sets = {BASE: batches, **{name: transform(g, batches, precision) for name, g in generators.items()}}
    record = with_provenance({
        "format": SWEEP_FORMAT, "voltages": list(voltages), **({} if bers is None else {"bers": list(bers)}),
        "split": split, "chips": seeds,
        **({} if fault_maps is None else {"fault_maps": [map_fingerprint(m) for m in fault_maps]}),
        "memory": memory.to_dict(), "precision": precision, "batch_size": batch_size,
        "base_fingerprint": model_fingerprint(base), "data_fingerprint": _data_fingerprint(batches),
        "generators": {name: {"architecture": type(g).__name__, "fingerprint": model_fingerprint(g)}
                       for name, g in generators.items()},
    }, provenance)
    store = _PointStore(out_dir, record) if out_dir is not None else None

    input_shape = tuple(batches[0][0].shape[1:])
    energy = _energy(base, generators, input_shape, voltages, model)
    work = SweepWork(base, input_sets, memory, store.points if store else None, precision,
                     {m.seed: m for m in fault_maps or ()})
    clean = (store.load("clean") if store else None) or {}
    missing = work.missing(clean)
    if missing:
        clean.update(zip(missing, clean_accuracies(work.deployment(), [input_sets[n] for n in missing],
                                                   precision).tolist()))
        if store:
            store.save("clean", clean)
    measured = {(p, chip): work.saved(p, chip) for p in points for chip in seeds}
    tasks = [ChipTask(chip, tuple(p for p in points if work.missing(measured[p, chip]))) for chip in seeds]
    measured.update((runner or run_chips)(work, [t for t in tasks if t.points], progress))

    per_chip = pd.DataFrame([(name, voltage_of[p], chip, measured[p, chip][name])
                             for name in work.names for p in points for chip in seeds],
                            columns=["config", "voltage", "chip", "pa"])
    table = _summarize(per_chip, clean, {voltage_of[p]: p.ber for p in points}, energy,
                       {BASE: "", **{n: record["generators"][n]["architecture"] for n in generators}})
    if store:
        store.write_tables(table, per_chip)
    return table


def _summarize(per_chip: pd.DataFrame, clean: Mapping[str, float], bers: Mapping[float, float],
               energy: pd.DataFrame, architectures: Mapping[str, str]) -> pd.DataFrame:
    """The tidy sweep table from per-chip accuracies, CA per configuration and the energy columns."""
    groups = per_chip.groupby(["config", "voltage"], sort=False).pa
    stats = pd.DataFrame({"chips": groups.size(), "pa_mean": groups.mean(),
                          "pa_std": groups.std(ddof=1).fillna(0.0)}).reset_index()
    stats["pa_sem"] = stats.pa_std / np.sqrt(stats.chips)
    stats["generator"] = stats.config.map(architectures)
    stats["ber"] = stats.voltage.map(bers)
    stats["ca"] = stats.config.map(clean)
    table = stats.merge(energy, on=["config", "voltage"], how="left", validate="one_to_one")
    return table[list(SWEEP_COLUMNS)]


def _energy(base: nn.Module, generators: Mapping[str, nn.Module], input_shape: tuple[int, ...],
            voltages: Sequence[float], model: characterization.VoltageModel) -> pd.DataFrame:
    """Accesses and Eq. 6 energy columns for every (configuration, voltage)."""
    v = np.array(voltages)
    base_accesses = _row_accesses(base, input_shape)
    frames = []
    for name, accesses in {BASE: 0.0, **{n: _row_accesses(g, input_shape)
                                         for n, g in generators.items()}}.items():
        saving = energy_saving(base_accesses, accesses, v, tech=model)
        frames.append(pd.DataFrame({"config": name, "voltage": v, "accesses_base": base_accesses,
                                    "accesses_generator": accesses, "energy_relative": 1.0 - saving,
                                    "energy_saving": saving}))
    return pd.concat(frames, ignore_index=True)


def _row_accesses(network: nn.Module, input_shape: tuple[int, ...]) -> float:
    """Weight-memory row accesses of one inference of ``network`` (the paper's T.W.M.A.).

    A network without weight layers (the UIP baseline: one tensor added to the input) counts 0.
    """
    if not any(isinstance(m, STORED_LAYERS) for m in network.modules()):
        return 0.0
    return float(weight_accesses(network, input_shape).row_accesses.sum())


def _data_fingerprint(batches: Sequence[Batch]) -> str:
    """SHA-256 of the evaluation inputs and labels, in order."""
    digest = hashlib.sha256()
    for x, y in batches:
        for t in (x, y):
            digest.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _point_key(point: OperatingPoint, chip: int) -> str:
    """``v0.8300-chip3`` in a voltage sweep, ``ber0.01000000-chip3`` in a BER sweep (whose points
    have no voltage), so the point files of the two kinds of sweep never meet."""
    if point.voltage is None:
        return f"ber{point.ber:.{BER_DECIMALS}f}-chip{chip}"
    return f"v{point.voltage:.{VOLTAGE_DECIMALS}f}-chip{chip}"


class _PointStore:
    """The files of a sweep folder (see the module docstring)."""

    def __init__(self, path: str | Path, record: dict[str, Any]) -> None:
        earlier = Path(path) / "sweep.json"
        if earlier.is_file():
            before = json.loads(earlier.read_text())
            _check_generators_added(path, before.get("generators", {}), record["generators"])
            _check_points_added(path, before, record)
        self.path = start_run(path, "sweep.json", record, _identity, what="sweep folder", error=SweepError)
        self.points = self.path / "points"
        self.points.mkdir(exist_ok=True)
        for partial in self.points.glob(".*"):  # temporary files of a killed run
            partial.unlink()

    def load(self, key: str) -> dict[str, float] | None:
        """The values saved under ``key``, or None if that point is not done."""
        path = self.points / f"{key}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def save(self, key: str, values: dict[str, float]) -> None:
        write_json(self.points / f"{key}.json", values)

    def write_tables(self, table: pd.DataFrame, per_chip: pd.DataFrame) -> None:
        _write_csv(table, self.path / "sweep.csv")
        _write_csv(per_chip, self.path / "chips.csv")
        try:
            import pyarrow  # noqa: F401  (optional: parquet only when it is installed)
        except ImportError:
            return
        with atomic_path(self.path / "sweep.parquet") as tmp:
            table.to_parquet(tmp, index=False)


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    """What must match to resume a sweep: all but the provenance (paths), command, versions,
    generators (which may grow: :func:`_check_generators_added`) and the voltages or BERs (which
    may grow too: :func:`_check_points_added`); the fingerprints stand for the
    models and the data. A sweep recorded before memory configs, BER sweeps, splits, precisions or
    fault maps existed ran under its flat memory settings (:func:`sramsim.memory.recorded_memory`),
    over voltages, on test images, at fp32, on simulated chips (:data:`RECORD_DEFAULTS`)."""
    return {k: v for k, v in _with_defaults(record).items()
            if k not in ("provenance", "generators", "voltages", "bers", *SESSION_KEYS)}


def _check_generators_added(path: str | Path, earlier: Mapping[str, Any], now: Mapping[str, Any]) -> None:
    """A rerun of the sweep in ``path`` may add generators to ``earlier`` (name -> architecture
    and fingerprint), not leave one out or change one."""
    left_out = sorted(set(earlier) - set(now))
    changed = sorted(name for name in set(earlier) & set(now) if earlier[name] != now[name])
    problems = []
    if left_out:
        problems.append(f"it holds {', '.join(left_out)}: give them again")
    if changed:
        problems.append(f"{', '.join(changed)} is another model now: give it another name")
    if problems:
        raise SweepError(f"{str(path)!r} holds a sweep that this one can extend only with more "
                         f"generators ({'; '.join(problems)})")


def _check_points_added(path: str | Path, earlier: Mapping[str, Any], now: Mapping[str, Any]) -> None:
    """A rerun of the sweep in ``path`` may add voltages (or, to a BER sweep, BERs) to those of
    ``earlier``, not leave one out, nor turn a voltage sweep into a BER sweep or back."""
    axis = "bers" if "bers" in earlier else "voltages"
    if ("bers" in now) != (axis == "bers"):
        kind = {"bers": "a BER sweep (give --bers)", "voltages": "a voltage sweep (give --voltages)"}[axis]
        raise SweepError(f"{str(path)!r} holds {kind}: a rerun may add {axis} to it, not change the axis")
    left_out = sorted(set(earlier[axis]) - set(now[axis]))
    if left_out:
        raise SweepError(f"{str(path)!r} holds a sweep that this one can extend only with more {axis} "
                         f"(it holds {', '.join(f'{x:g}' for x in left_out)}: give them again)")


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def load_sweep(path: str | Path) -> pd.DataFrame:
    """The table of the finished sweep in folder ``path`` (its ``sweep.csv``)."""
    table_path = Path(path) / "sweep.csv"
    if not table_path.is_file():
        raise SweepError(f"{str(path)!r} holds no finished sweep (no sweep.csv): run `neuralfuse sweep` "
                         "into it first, or repeat its command to finish it")
    return pd.read_csv(table_path, keep_default_na=False)


def load_chips(path: str | Path) -> pd.DataFrame:
    """The per-chip table of the finished sweep in folder ``path``: its ``chips.csv`` (``config``,
    ``voltage``, ``chip``, ``pa``) with each row's ``ber``, ``energy_relative`` and
    ``energy_saving`` from its ``sweep.csv``."""
    energy = load_sweep(path)[["config", "voltage", "ber", "energy_relative", "energy_saving"]]
    chips = pd.read_csv(Path(path) / "chips.csv", keep_default_na=False)
    return chips.merge(energy, on=["config", "voltage"], how="left", validate="many_to_one")


def load_record(path: str | Path) -> dict[str, Any]:
    """What the sweep in folder ``path`` was asked (its ``sweep.json``); a sweep recorded before
    BER sweeps, splits, precisions, fault maps or memory configs gets :data:`RECORD_DEFAULTS` and its
    ``memory`` dict from its flat settings (:func:`sramsim.memory.recorded_memory`)."""
    record_path = Path(path) / "sweep.json"
    if not record_path.is_file():
        raise SweepError(f"{str(path)!r} is not a sweep folder (no sweep.json)")
    return _with_defaults(json.loads(record_path.read_text()))


def _with_defaults(record: Mapping[str, Any]) -> dict[str, Any]:
    """A ``sweep.json`` record with :data:`RECORD_DEFAULTS` for what it lacks and its memory config
    as one ``memory`` dict."""
    rest = {k: v for k, v in record.items() if k not in MEMORY_FIELDS}
    return {**RECORD_DEFAULTS, **rest, "memory": recorded_memory(record)}


def pareto_front(table: pd.DataFrame, x: str = "energy_saving", y: str = "pa_mean") -> pd.Series:
    """Boolean mask of the rows no other row beats on both ``x`` and ``y`` (higher is better).

    A row is dominated when another row is at least as good on both and strictly better on one.

    >>> t = pd.DataFrame({"energy_saving": [0.1, 0.2, 0.3], "pa_mean": [90.0, 80.0, 85.0]})
    >>> pareto_front(t).tolist()
    [True, False, True]
    """
    xs, ys = table[x].to_numpy(float), table[y].to_numpy(float)
    at_least = (xs[None, :] >= xs[:, None]) & (ys[None, :] >= ys[:, None])
    better = (xs[None, :] > xs[:, None]) | (ys[None, :] > ys[:, None])
    return pd.Series(~(at_least & better).any(axis=1), index=table.index, name="pareto")


def operating_points(table: pd.DataFrame, min_accuracy: float, criterion: Criterion | str = MEAN,
                     per_chip: pd.DataFrame | None = None) -> dict[str, Any]:
    """The lowest-energy row per configuration that keeps ``min_accuracy`` (%) under ``criterion``,
    and the best.

    ``criterion`` (:mod:`neuralfuse.criteria`; default: the mean PA over chips) judges each row;
    any criterion but the mean needs ``per_chip``, the per-chip accuracies of the sweep (its
    ``chips.csv``: columns ``config``, ``voltage``, ``chip``, ``pa``). Returns plain values
    (JSON-ready): ``min_accuracy``, ``criterion`` (its label, e.g. ``"yield:0.95"``),
    ``per_config`` (configuration name → the chosen row as a dict with its ``criterion_score``, or
    None when no voltage keeps the accuracy) and ``best`` (the chosen row with the largest energy
    saving over all configurations, or None). Ties go to the higher mean PA.
    """
    if not 0.0 <= min_accuracy <= 100.0:
        raise ValueError(f"min_accuracy={min_accuracy!r} is not valid: use a percentage in [0, 100]")
    criterion = parse_criterion(criterion)
    scored = judged(table, min_accuracy, criterion, per_chip)
    ok = scored[scored.meets].drop(columns="meets").sort_values(["energy_saving", "pa_mean"],
                                                                ascending=False, kind="stable")
    per_config = {name: None for name in table.config.unique()}
    for name, rows in ok.groupby("config", sort=False):
        per_config[name] = _plain(rows.iloc[0])
    return {"min_accuracy": float(min_accuracy), "criterion": criterion.label, "per_config": per_config,
            "best": _plain(ok.iloc[0]) if len(ok) else None}


def judged(table: pd.DataFrame, min_accuracy: float, criterion: Criterion,
           per_chip: pd.DataFrame | None = None) -> pd.DataFrame:
    """``table`` with ``criterion_score`` and ``meets`` (whether the row keeps ``min_accuracy``
    under ``criterion``; see :func:`operating_points` for ``per_chip``)."""
    if criterion == MEAN:
        return table.assign(criterion_score=table.pa_mean, meets=table.pa_mean >= min_accuracy)
    if per_chip is None:
        raise ValueError(f"criterion {criterion.label!r} needs the per-chip accuracies of the sweep "
                         "(its chips.csv); only 'mean' works from the summary table alone")
    scores = criterion_scores(per_chip, criterion, min_accuracy)
    merged = table.merge(scores, on=["config", "voltage"], how="left", validate="one_to_one")
    if merged.meets.isna().any():
        missing = merged[merged.meets.isna()].iloc[0]
        raise ValueError(f"the per-chip table has no chips for {missing.config!r} at "
                         f"{missing.voltage:g} Vmin: give the chips.csv of the same sweep")
    return merged.astype({"meets": bool})


def format_operating_points(result: dict[str, Any]) -> str:
    """Printable lines for an :func:`operating_points` result."""
    criterion = parse_criterion(result.get("criterion", "mean"))
    lines = [f"lowest-energy operating points with {criterion.describe()} >= {result['min_accuracy']:g}%"
             + ("" if criterion == MEAN else f" ({criterion.label})") + ":"]
    for name, row in result["per_config"].items():
        lines.append(f"  {name:<16} " + (_describe(row, criterion) if row else
                                         "none: no voltage keeps that accuracy"))
    best = result["best"]
    lines.append("best overall: " + (f"{best['config']} at {_describe(best, criterion)}" if best else "none"))
    return "\n".join(lines)


def _describe(row: Mapping[str, Any], criterion: Criterion = MEAN) -> str:
    score = row.get("criterion_score")
    judged_by = ("" if criterion == MEAN or score is None else
                 f", {criterion.label} {100 * score:.0f}% of chips" if criterion.name == "yield" else
                 f", {criterion.label} PA {score:.2f}%")
    return (f"{row['voltage']:.3f} Vmin (BER {100 * row['ber']:.3g}%): PA {row['pa_mean']:.2f} "
            f"± {row['pa_std']:.2f}%{judged_by}, CA {row['ca']:.2f}%, "
            f"energy saving {100 * row['energy_saving']:.1f}%")


def _plain(row: pd.Series) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
