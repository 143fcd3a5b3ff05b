"""Which protection pays, at which accuracy: strategies compared on the same chips.

A :class:`Strategy` is one named way to run: a finished sweep (:mod:`neuralfuse.tradeoff`) and one
configuration in it (``"base"``: the sweep's base model alone, its voltage margin; or a generator's
configuration name: that base model behind NeuralFuse), at one supply voltage for every chip, or,
given the calibration sweep of the same chips (``neuralfuse sweep --on calibration``), each chip at
its own voltage (:mod:`neuralfuse.per_chip_voltage`). Strategies may come from different sweeps,
i.e. different base models (the reference VGG11, a clipped GroupNorm VGG11, one trained with random
bit errors, ...)::

    comparison = compare_strategies([
        Strategy("VGG11", "sweeps/vgg11"),
        Strategy("VGG11 + UNetS", "sweeps/vgg11", config="unets-s0"),
        Strategy("clipped VGG11", "sweeps/vgg11-clip"),
        Strategy("clipped VGG11, per chip", "sweeps/vgg11-clip", calibration="sweeps/vgg11-clip-cal"),
    ], drops=(2, 5, 10, 20))
    comparison.table     # one row per strategy x criterion x floor: energy saved, its uncertainty
    comparison.winners   # one row per criterion x floor: the winner, its margin, how often it wins

**Same chips, same images, same energy model.** Every strategy's sweep must hold test images and
record the same evaluation chips, the same test images (``data_fingerprint``), the same
technology, fault model, fault layout and weight bits (of its memory config); anything else is
refused with a :class:`StrategyError` naming what differs. Base models, generators, the storage
format (robust storage is a protection) and arithmetic precision are what strategies may differ in.

**Floors.** Accuracy floors are absolute (PA in %) or ``drops``: points below the clean accuracy
(CA) of the *reference* strategy (default: the first), rounded to 2 decimals as the demo's are.

**Energy saved** at a floor under a criterion (:mod:`neuralfuse.criteria`; default mean,
quantile:0.1 and yield:0.95): at one voltage for all chips, that of the lowest-energy swept voltage
whose chips keep the floor under the criterion (None: none does); per chip, each chip at its
lowest swept voltage keeping the floor on validation images, scored on test: the mean energy over
chips, kept only when the chips' test PAs meet the criterion. Energy is weight-memory energy per
input (Eq. 6: a generator's reads at Vmin) over that of the reference strategy's base model at
Vmin, which is each sweep's own ``energy_saving`` when the base models store as many weights.

**Chip-to-chip uncertainty.** A bootstrap over chips: ``resamples`` draws of n chips with
replacement from the n evaluation chips (seeded; the same draws for every strategy, so
differences between strategies are paired). Each strategy's energy saved is recomputed on every
draw, voltage choice included; reported: the fraction of draws in which it keeps the floor and,
over those, the standard error and the percentile interval. For each criterion and floor the
winner (most energy saved on the evaluation chips; earlier strategies win ties) is compared with
the runner-up: the margin, its paired-bootstrap standard error and interval (draws where both
keep the floor), and the fraction of draws in which the winner saves strictly more than every
other strategy.

**Criteria that coincide.** On n chips ``quantile:Q`` and ``yield:Y`` both ask a number of chips
to keep the floor (:meth:`Criterion.chips_required`); when they ask the same number (with 10 or 20
chips, quantile:0.1 and yield:0.95), they are one condition: the later one's rows name the
earlier in ``same_as``, and the report shows them once.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from characterization.validation import check_scalar
from neuralfuse.criteria import Criterion, parse_criterion
from neuralfuse.per_chip_voltage import per_chip_voltages
from neuralfuse.tradeoff import BASE, SweepError, load_chips, load_record, load_sweep
from sramsim.memory import FIELDS as MEMORY_FIELDS

DEFAULT_DROPS = (2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0)
"""Accuracy floors by default: the reference strategy's CA minus these points."""
DEFAULT_CRITERIA = ("mean", "quantile:0.1", "yield:0.95")
COMMON = {"chips": "evaluation chips", "data_fingerprint": "test images", "tech": "technology",
          "fault_model": "fault model", "layout": "fault layout", "bits": "weight bits"}
"""What every strategy's sweep must share: ``sweep.json`` key (or field of its ``memory``) -> what it
is, in words."""
FLOOR_DECIMALS = 2
TABLE_COLUMNS = ("strategy", "config", "per_chip", "criterion", "same_as", "floor", "below_reference_ca",
                 "kept", "energy_saving", "voltage", "ber", "voltage_min", "voltage_max", "pa_mean",
                 "criterion_score", "kept_fraction", "energy_saving_se", "energy_saving_low",
                 "energy_saving_high", "best")
WINNER_COLUMNS = ("criterion", "same_as", "floor", "below_reference_ca", "winner", "runner_up", "margin",
                  "margin_se", "margin_low", "margin_high", "win_fraction")


class StrategyError(ValueError):
    """Strategies that cannot be compared: a missing sweep or configuration, or sweeps measured on
    other chips, other images or another technology."""


@dataclass(frozen=True)
class Strategy:
    """One way to run: configuration ``config`` of the sweep in folder ``sweep``, at one voltage
    for all chips, or with ``calibration`` (that sweep's calibration sweep) each chip at its own."""

    name: str
    sweep: Path
    config: str = BASE
    calibration: Path | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise StrategyError(f"strategy name {self.name!r} is not valid: use a non-empty string")
        if not isinstance(self.config, str) or not self.config:
            raise StrategyError(f"config {self.config!r} of strategy {self.name!r} is not valid: use "
                                f"{BASE!r} (the base model alone) or a generator's configuration name")
        object.__setattr__(self, "sweep", Path(self.sweep))
        if self.calibration is not None:
            object.__setattr__(self, "calibration", Path(self.calibration))

    @property
    def per_chip(self) -> bool:
        """Whether each chip runs at its own voltage."""
        return self.calibration is not None

    def describe(self) -> str:
        """The strategy in words, e.g. ``"base of 'sweeps/vgg11', each chip at its own voltage ..."``."""
        what = "the base model alone" if self.config == BASE else f"generator configuration {self.config!r}"
        rule = (f"each chip at its own voltage, calibrated on '{self.calibration}'" if self.per_chip
                else "one voltage for all chips")
        return f"{what} of '{self.sweep}', {rule}"


@dataclass(frozen=True)
class Bootstrap:
    """How the chips are resampled: ``resamples`` draws (>= 2) from seed ``seed``; intervals hold
    the central fraction ``level`` of the draws."""

    resamples: int = 1000
    seed: int = 0
    level: float = 0.95

    def __post_init__(self) -> None:
        check_scalar(self.resamples, "resamples", int, min_val=2)
        check_scalar(self.seed, "seed", int, min_val=0)
        check_scalar(self.level, "level", float, min_val=0.0, max_val=1.0, include_boundaries="neither",
                     allowed="a fraction in (0, 1), e.g. 0.95")

    def draws(self, chips: int) -> np.ndarray:
        """Chip indices, shape (resamples + 1, chips): row 0 is the evaluation chips themselves,
        the others draws with replacement, the same for this seed on every machine."""
        rng = np.random.default_rng(self.seed)
        return np.vstack([np.arange(chips), rng.integers(0, chips, size=(self.resamples, chips))])


@dataclass(frozen=True)
class MeasuredStrategy:
    """A :class:`Strategy` with what its sweeps hold: ``record`` (its ``sweep.json``), ``test`` (its
    configuration's per-chip table on test images), ``calibration`` (the same on validation images,
    per-chip strategies only), ``ca`` (clean accuracy, %) and ``accesses_base`` (the base model's
    weight-memory row accesses per input)."""

    strategy: Strategy
    record: dict[str, Any]
    test: pd.DataFrame
    calibration: pd.DataFrame | None
    ca: float
    accesses_base: float

    def summary(self) -> dict[str, Any]:
        """Plain values describing the strategy, for the comparison's JSON."""
        generator = self.record.get("generators", {}).get(self.strategy.config, {})
        return {"name": self.strategy.name, "sweep": str(self.strategy.sweep), "config": self.strategy.config,
                "calibration": None if self.strategy.calibration is None else str(self.strategy.calibration),
                "per_chip": self.strategy.per_chip, "ca": self.ca, "accesses_base": self.accesses_base,
                "generator": generator.get("architecture", ""),
                "base_fingerprint": self.record.get("base_fingerprint"),
                "storage": self.record["memory"]["storage"], "precision": self.record["precision"]}


def load_strategy(strategy: Strategy) -> MeasuredStrategy:
    """Read ``strategy``'s sweeps, checked: a finished sweep on test images that holds its
    configuration, and for a per-chip strategy a calibration sweep of the same models on the same
    chips and voltages, on validation images. A :class:`StrategyError` names what is wrong."""
    name = strategy.name
    record = _record(strategy.sweep, name, "sweep")
    if record["split"] != "test":
        raise StrategyError(f"sweep '{strategy.sweep}' of strategy {name!r} holds {record['split']} images: "
                            "give a sweep on test images (`neuralfuse sweep --on test`)")
    sweep_table = _read(load_sweep, strategy.sweep, name)
    configs = list(dict.fromkeys(sweep_table.config))
    if strategy.config not in configs:
        raise StrategyError(f"config {strategy.config!r} of strategy {name!r} is not in sweep "
                            f"'{strategy.sweep}': it holds {', '.join(configs)}")
    rows = sweep_table[sweep_table.config == strategy.config]
    test = _config_chips(strategy.sweep, strategy.config, name)
    calibration = None
    if strategy.per_chip:
        _check_calibration(strategy, record, _record(strategy.calibration, name, "calibration sweep"))
        calibration = _config_chips(strategy.calibration, strategy.config, name)
        try:
            per_chip_voltages(calibration, test, 0.0)   # the same chips and voltages
        except ValueError as err:
            raise StrategyError(f"calibration sweep '{strategy.calibration}' of strategy {name!r}: {err}") from None
    return MeasuredStrategy(strategy, record, test, calibration, float(rows.ca.iloc[0]),
                            float(rows.accesses_base.iloc[0]))


def check_comparable(measured: Sequence[MeasuredStrategy]) -> None:
    """Refuse strategies whose sweeps differ in any of :data:`COMMON` (a :class:`StrategyError`
    naming the two strategies and every difference), or that share a name."""
    names = [m.strategy.name for m in measured]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise StrategyError(f"strategy name(s) {', '.join(map(repr, twice))} given twice: give each strategy "
                            "its own name")
    first = measured[0]
    for other in measured[1:]:
        differences = [f"{COMMON[key]} ({_shown(key, first.record)} vs {_shown(key, other.record)})"
                       for key in COMMON if _common(key, first.record) != _common(key, other.record)]
        if differences:
            raise StrategyError(
                f"strategies {first.strategy.name!r} (sweep '{first.strategy.sweep}') and "
                f"{other.strategy.name!r} (sweep '{other.strategy.sweep}') were not measured alike: "
                f"{'; '.join(differences)}. Compare strategies swept on the same evaluation chips, "
                "test images, technology, fault model, layout and weight bits")


def accuracy_floors(reference_ca: float, drops: Sequence[float] = DEFAULT_DROPS,
                    floors: Sequence[float] = ()) -> tuple[float, ...]:
    """The distinct floors (PA, %), highest first: ``reference_ca`` minus each of ``drops`` (points,
    in [0, 100]) and the absolute ``floors`` (in [0, 100]), rounded to :data:`FLOOR_DECIMALS`.

    >>> accuracy_floors(87.7, drops=(2, 20), floors=(80,))
    (85.7, 80.0, 67.7)
    """
    for drop in drops:
        check_scalar(drop, "drop", float, min_val=0.0, max_val=100.0,
                     allowed="points below the reference CA in [0, 100], e.g. 5")
    for floor in floors:
        check_scalar(floor, "floor", float, min_val=0.0, max_val=100.0, allowed="a percentage in [0, 100]")
    values = {round(max(0.0, reference_ca - d), FLOOR_DECIMALS) for d in drops}
    values |= {round(float(f), FLOOR_DECIMALS) for f in floors}
    if not values:
        raise ValueError("no accuracy floors: give drops (points below the reference CA) or floors (%)")
    return tuple(sorted(values, reverse=True))


def parse_criteria(criteria: Sequence[Criterion | str]) -> tuple[Criterion, ...]:
    """The criteria (:func:`neuralfuse.criteria.parse_criterion`), at least one, each once."""
    parsed = tuple(parse_criterion(c) for c in criteria)
    labels = [c.label for c in parsed]
    if not parsed or len(set(labels)) < len(labels):
        raise ValueError(f"criteria {labels} are not valid: give each criterion once, at least one")
    return parsed


def equivalent_criteria(criteria: Sequence[Criterion], chips: int) -> dict[str, str]:
    """Label -> the label of an earlier criterion in ``criteria`` that asks the same number of
    ``chips`` chips to keep the floor (the same condition); criteria without one are left out.

    >>> equivalent_criteria([parse_criterion(c) for c in ("mean", "quantile:0.1", "yield:0.95")], 10)
    {'yield:0.95': 'quantile:0.1'}
    """
    same, seen = {}, {}
    for criterion in criteria:
        required = criterion.chips_required(chips)
        if required is None:
            continue
        if required in seen:
            same[criterion.label] = seen[required]
        else:
            seen[required] = criterion.label
    return same


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare_strategies` found (see the module docstring). ``table`` has
    :data:`TABLE_COLUMNS` (energy as fractions; ``kept`` False and NaN energy where the strategy
    keeps the floor at no voltage, or, per chip, fails the criterion on test); ``winners`` has
    :data:`WINNER_COLUMNS` (``winner`` "" where no strategy keeps the floor, ``runner_up`` "" where
    only one does)."""

    strategies: tuple[MeasuredStrategy, ...]
    reference: str
    chips: tuple[int, ...]
    criteria: tuple[Criterion, ...]
    same_as: dict[str, str]
    floors: tuple[float, ...]
    bootstrap: Bootstrap
    table: pd.DataFrame
    winners: pd.DataFrame

    @property
    def reference_ca(self) -> float:
        """Clean accuracy (%) of the reference strategy, from which the drops are counted."""
        return next(m.ca for m in self.strategies if m.strategy.name == self.reference)

    def shown_criteria(self) -> list[Criterion]:
        """The criteria that are not the same condition as an earlier one: one table or panel each."""
        return [c for c in self.criteria if c.label not in self.same_as]

    def title(self, criterion: Criterion) -> str:
        """``criterion`` in words, with the criteria that are the same condition on these chips, e.g.
        ``"10th-percentile chip PA (quantile:0.1) = 95% yield (yield:0.95)"``."""
        same = [c for c in self.criteria if self.same_as.get(c.label) == criterion.label]
        return " = ".join(f"{c.describe()} ({c.label})" for c in (criterion, *same))

    @property
    def setting(self) -> dict[str, Any]:
        """What every strategy shares: chips, test images, technology, fault model, layout, bits."""
        record = self.strategies[0].record
        return {key: _common(key, record) for key in COMMON} | {
            "samples": record.get("provenance", {}).get("samples"),
            "dataset": record.get("provenance", {}).get("dataset")}

    def as_dict(self) -> dict[str, Any]:
        """Plain values (JSON-ready: NaN as None)."""
        return {"format": "neuralfuse.strategies", "reference": self.reference,
                "reference_ca": self.reference_ca, "setting": self.setting,
                "energy_basis": "weight-memory energy per input over that of the reference strategy's "
                                "base model at Vmin",
                "bootstrap": {"resamples": self.bootstrap.resamples, "seed": self.bootstrap.seed,
                              "level": self.bootstrap.level},
                "criteria": [{"criterion": c.label, "describe": c.describe(),
                              "same_as": self.same_as.get(c.label)} for c in self.criteria],
                "floors": list(self.floors),
                "strategies": [m.summary() for m in self.strategies],
                "results": _records(self.table), "winners": _records(self.winners)}


def compare_strategies(strategies: Sequence[Strategy], *, drops: Sequence[float] = DEFAULT_DROPS,
                       floors: Sequence[float] = (), criteria: Sequence[Criterion | str] = DEFAULT_CRITERIA,
                       reference: str | None = None, bootstrap: Bootstrap = Bootstrap()) -> Comparison:
    """Energy saved by each strategy at each floor under each criterion, with chip-to-chip
    uncertainty, and the winner at each floor (see the module docstring).

    ``drops`` and ``floors``: :func:`accuracy_floors` of the ``reference`` strategy's CA (a name
    among ``strategies``; default: the first). Every strategy is loaded and checked
    (:func:`load_strategy`, :func:`check_comparable`) before anything is computed.
    """
    if not strategies:
        raise StrategyError("no strategies to compare: give at least one")
    criteria = parse_criteria(criteria)
    measured = tuple(load_strategy(s) for s in strategies)
    check_comparable(measured)
    names = [m.strategy.name for m in measured]
    reference = names[0] if reference is None else reference
    if reference not in names:
        raise StrategyError(f"reference {reference!r} is not one of the strategies: use one of "
                            f"{', '.join(map(repr, names))}")
    reference_ca = measured[names.index(reference)].ca
    floor_values = accuracy_floors(reference_ca, drops, floors)
    chips = tuple(sorted(int(c) for c in measured[0].record["chips"]))
    draws = bootstrap.draws(len(chips))
    reference_accesses = measured[names.index(reference)].accesses_base
    outcomes = {m.strategy.name: _StrategyOutcomes(m, chips, reference_accesses) for m in measured}
    same_as = equivalent_criteria(criteria, len(chips))
    rows, winners = [], []
    for criterion in criteria:
        for floor in floor_values:
            found = {name: outcome.at(criterion, floor, draws) for name, outcome in outcomes.items()}
            energies = np.vstack([f.pop("energy") for f in found.values()])   # strategy x draw
            best = _best(energies[:, 0])
            common = {"criterion": criterion.label, "same_as": same_as.get(criterion.label, ""),
                      "floor": floor, "below_reference_ca": reference_ca - floor}
            for i, (name, values) in enumerate(found.items()):
                rows.append({"strategy": name, "config": outcomes[name].strategy.config,
                             "per_chip": outcomes[name].strategy.per_chip, **common, **values,
                             **_spread(energies[i, 1:], bootstrap.level), "best": bool(best[i])})
            winners.append({**common, **_winner(names, energies, bootstrap.level)})
    return Comparison(measured, reference, chips, criteria, same_as, floor_values, bootstrap,
                      pd.DataFrame(rows, columns=list(TABLE_COLUMNS)),
                      pd.DataFrame(winners, columns=list(WINNER_COLUMNS)))


class _StrategyOutcomes:
    """One strategy's energy saved under any criterion and floor, on any draw of its chips."""

    def __init__(self, measured: MeasuredStrategy, chips: Sequence[int], reference_accesses: float) -> None:
        self.strategy = measured.strategy
        self.measured = measured
        self.chips = list(chips)
        self.scale = measured.accesses_base / reference_accesses   # energy relative to the reference's
        test = measured.test
        if sorted(test.chip.unique()) != self.chips:
            raise StrategyError(f"sweep '{self.strategy.sweep}' of strategy {self.strategy.name!r} holds "
                                "per-chip results for other chips than its sweep.json records")
        by_voltage = test.pivot(index="voltage", columns="chip", values="pa").sort_index(ascending=False)
        self.pa = by_voltage[self.chips].to_numpy(float)                         # voltage x chip
        energy = test.groupby("voltage").agg(ber=("ber", "first"), saving=("energy_saving", "first"),
                                             relative=("energy_relative", "first")).loc[by_voltage.index]
        self.voltages, self.bers = by_voltage.index.to_numpy(float), energy.ber.to_numpy(float)
        self.saving = self._saving(energy.saving.to_numpy(float), energy.relative.to_numpy(float))
        self._per_chip: dict[float, pd.DataFrame] = {}

    def _saving(self, saving: np.ndarray, relative: np.ndarray) -> np.ndarray:
        """1 - energy over the reference base model's: the sweep's own saving, exactly, when this
        base model reads as many weights as the reference's (``scale`` 1)."""
        return saving + (1.0 - self.scale) * relative

    def at(self, criterion: Criterion, floor: float, draws: np.ndarray) -> dict[str, Any]:
        """The table columns on the evaluation chips (draw 0) and ``energy``: energy saved on every
        draw (NaN where the floor is not kept)."""
        if self.strategy.per_chip:
            return self._per_chip_at(criterion, floor, draws)
        meets = criterion.meets(self.pa[:, draws], floor)                         # voltage x draw
        masked = np.where(meets, self.saving[:, None], -np.inf)
        energy = masked.max(axis=0)
        energy[~np.isfinite(energy)] = np.nan
        kept = bool(meets[:, 0].any())
        chosen = int(masked[:, 0].argmax())
        voltage = self.voltages[chosen] if kept else math.nan
        pa = self.pa[chosen]
        return {"kept": kept, "energy_saving": energy[0], "voltage": voltage,
                "ber": self.bers[chosen] if kept else math.nan, "voltage_min": voltage, "voltage_max": voltage,
                "pa_mean": float(pa.mean()) if kept else math.nan,
                "criterion_score": criterion.score(pa, floor) if kept else math.nan, "energy": energy}

    def _per_chip_at(self, criterion: Criterion, floor: float, draws: np.ndarray) -> dict[str, Any]:
        if floor not in self._per_chip:
            chosen = per_chip_voltages(self.measured.calibration, self.measured.test, floor)
            self._per_chip[floor] = chosen.set_index("chip").loc[self.chips]
        chosen = self._per_chip[floor]
        test_pa = chosen.test_pa.to_numpy(float)
        saving = self._saving(chosen.energy_saving.to_numpy(float)[draws].mean(axis=1),
                              chosen.energy_relative.to_numpy(float)[draws].mean(axis=1))
        meets = criterion.meets(test_pa[draws], floor)
        energy = np.where(meets, saving, np.nan)
        return {"kept": bool(meets[0]), "energy_saving": energy[0], "voltage": math.nan, "ber": math.nan,
                "voltage_min": float(chosen.voltage.min()), "voltage_max": float(chosen.voltage.max()),
                "pa_mean": float(test_pa.mean()), "criterion_score": criterion.score(test_pa, floor),
                "energy": energy}


def _best(energy: np.ndarray) -> np.ndarray:
    """Which strategies save the most energy (ties all marked; none where none keeps the floor)."""
    if np.isnan(energy).all():
        return np.zeros(len(energy), dtype=bool)
    return energy == np.nanmax(energy)


def _spread(energy: np.ndarray, level: float) -> dict[str, float]:
    """Fraction of draws keeping the floor; over those, standard error and percentile interval."""
    kept = energy[~np.isnan(energy)]
    low, high = _interval(kept, level)
    return {"kept_fraction": float(len(kept) / len(energy)),
            "energy_saving_se": float(kept.std(ddof=1)) if len(kept) > 1 else math.nan,
            "energy_saving_low": low, "energy_saving_high": high}


def _winner(names: Sequence[str], energies: np.ndarray, level: float) -> dict[str, Any]:
    """The winner on the evaluation chips (column 0 of ``energies``: strategy x draw), the
    runner-up, the paired margin between them and how often the winner wins outright."""
    point = np.where(np.isnan(energies[:, 0]), -np.inf, energies[:, 0])
    none = {"winner": "", "runner_up": "", "margin": math.nan, "margin_se": math.nan,
            "margin_low": math.nan, "margin_high": math.nan, "win_fraction": math.nan}
    if not np.isfinite(point).any():
        return none
    order = np.argsort(-point, kind="stable")
    first = order[0]
    draws = np.where(np.isnan(energies[:, 1:]), -np.inf, energies[:, 1:])
    others = np.delete(draws, first, axis=0)
    wins = np.isfinite(draws[first]) & (draws[first] > (others.max(axis=0) if len(others) else -np.inf))
    result = {**none, "winner": names[first], "win_fraction": float(wins.mean())}
    if len(order) < 2 or not np.isfinite(point[order[1]]):
        return result
    second = order[1]
    difference = energies[first, 1:] - energies[second, 1:]
    difference = difference[~np.isnan(difference)]
    low, high = _interval(difference, level)
    return {**result, "runner_up": names[second], "margin": float(point[first] - point[second]),
            "margin_se": float(difference.std(ddof=1)) if len(difference) > 1 else math.nan,
            "margin_low": low, "margin_high": high}


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    if not len(values):
        return math.nan, math.nan
    low, high = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def _record(path: Path, strategy: str, what: str) -> dict[str, Any]:
    if not path.is_dir():
        raise StrategyError(f"{what} folder '{path}' of strategy {strategy!r} does not exist: give the "
                            "folder `neuralfuse sweep -o` wrote")
    return _read(load_record, path, strategy)


def _read(reader: Callable[[Path], Any], path: Path, strategy: str) -> Any:
    """``reader(path)``, a SweepError (no sweep, an unfinished one) naming the strategy."""
    try:
        return reader(path)
    except SweepError as err:
        raise StrategyError(f"strategy {strategy!r}: {err}") from None


def _config_chips(path: Path, config: str, strategy: str) -> pd.DataFrame:
    """The per-chip table of ``config`` in the sweep at ``path`` with each row's ``accesses_base``."""
    chips = _read(load_chips, path, strategy)
    sweep_table = load_sweep(path)[["config", "voltage", "accesses_base"]]
    chips = chips.merge(sweep_table, on=["config", "voltage"], how="left", validate="many_to_one")
    return chips[chips.config == config].reset_index(drop=True)


def _check_calibration(strategy: Strategy, test: dict[str, Any], calibration: dict[str, Any]) -> None:
    """A per-chip strategy's calibration sweep: validation images, the same base model (and
    generator) on the same chips, technology, fault model, layout, bits and storage format as its
    test sweep."""
    where = f"calibration sweep '{strategy.calibration}' of strategy {strategy.name!r}"
    if calibration["split"] != "validation":
        raise StrategyError(f"{where} holds {calibration['split']} images: give a sweep on the base model's "
                            "held-out images (`neuralfuse sweep --on calibration`)")
    generator = (lambda record: record.get("generators", {}).get(strategy.config, {}).get("fingerprint"))
    differences = [f"{COMMON[key]} ({_shown(key, calibration)} vs {_shown(key, test)})"
                   for key in COMMON if key != "data_fingerprint" and _common(key, calibration) != _common(key, test)]
    storages = calibration["memory"]["storage"], test["memory"]["storage"]
    if storages[0] != storages[1]:
        differences.append(f"storage format ({storages[0]} vs {storages[1]})")
    if calibration.get("base_fingerprint") != test.get("base_fingerprint"):
        differences.append("base model")
    if strategy.config != BASE and generator(calibration) != generator(test):
        differences.append(f"generator {strategy.config!r}")
    if differences:
        raise StrategyError(f"{where} does not match its test sweep '{strategy.sweep}': "
                            f"{'; '.join(differences)} (sweep the same models with `--on calibration` "
                            "and the test sweep's chips)")


def _common(key: str, record: dict[str, Any]) -> Any:
    value = record["memory"][key] if key in MEMORY_FIELDS else record.get(key)
    return sorted(int(c) for c in value) if key == "chips" and value is not None else value


def _shown(key: str, record: dict[str, Any]) -> str:
    """A recorded value as a message shows it: chips as a range, fingerprints shortened."""
    value = _common(key, record)
    if key == "chips" and value:
        consecutive = value == list(range(value[0], value[0] + len(value)))
        return (f"{value[0]}-{value[-1]}" if consecutive and len(value) > 1 else
                ", ".join(map(str, value[:6])) + (", ..." if len(value) > 6 else "")) + f": {len(value)} chips"
    if key == "data_fingerprint" and value:
        samples = record.get("provenance", {}).get("samples")
        return f"{value[:12]}..." + ("" if samples is None else f", {samples} samples")
    return str(value)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as plain dicts, NaN as None."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v.item() if isinstance(v, np.generic) else v)
             for k, v in row.items()} for row in frame.to_dict(orient="records")]
