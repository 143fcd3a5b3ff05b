"""A strategy comparison from one small TOML spec (``neuralfuse strategies SPEC.toml -o DIR``)::

    reference = "VGG11"                    # whose clean accuracy the drops count from [default: the first]
    drops = [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]   # floors: the reference CA minus these points
    floors = [80.0]                        # and/or absolute floors (PA, %)
    criteria = ["mean", "quantile:0.1", "yield:0.95"]

    [bootstrap]                            # over the evaluation chips
    resamples = 1000
    seed = 0
    level = 0.95

    [[strategy]]                           # relative paths are relative to the spec file
    name = "VGG11"
    sweep = "sweeps/vgg11"                 # a finished `neuralfuse sweep` folder, on test images
    config = "base"                        # the base model alone (default), or a generator's name

    [[strategy]]
    name = "VGG11, per chip"
    sweep = "sweeps/vgg11"
    calibration = "sweeps/vgg11-calibration"   # `neuralfuse sweep --on calibration`: each chip its own voltage

Everything is checked when the spec is read (:func:`load_spec`): unknown keys, a bad criterion,
drop, floor or bootstrap setting each raise a one-line :class:`StrategySpecError` naming the value
and what is allowed; the sweeps are checked by :func:`neuralfuse.strategies.compare_strategies`.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neuralfuse.criteria import Criterion
from neuralfuse.strategies import (DEFAULT_CRITERIA, DEFAULT_DROPS, Bootstrap, Comparison, Strategy,
                                   accuracy_floors, compare_strategies, parse_criteria)
from neuralfuse.tradeoff import BASE
from neuralfuse.toml_files import read_toml

TOP_LEVEL = {"reference", "drops", "floors", "criteria", "bootstrap", "strategy"}
STRATEGY_KEYS = {"name", "sweep", "config", "calibration"}
BOOTSTRAP_KEYS = {"resamples", "seed", "level"}


class StrategySpecError(ValueError):
    """A strategy spec that cannot be read: unreadable, unknown keys or bad values."""


@dataclass(frozen=True)
class ComparisonSpec:
    """A parsed spec: the arguments of :func:`neuralfuse.strategies.compare_strategies`."""

    strategies: tuple[Strategy, ...]
    reference: str | None
    drops: tuple[float, ...]
    floors: tuple[float, ...]
    criteria: tuple[Criterion, ...]
    bootstrap: Bootstrap

    def compare(self) -> Comparison:
        """Load the strategies' sweeps, check them and compare them."""
        return compare_strategies(self.strategies, drops=self.drops, floors=self.floors,
                                  criteria=self.criteria, reference=self.reference, bootstrap=self.bootstrap)


def load_spec(path: str | Path) -> ComparisonSpec:
    """Read and check the spec at ``path`` (see the module docstring)."""
    return parse_spec(read_toml(path, "strategy spec", StrategySpecError), Path(path).parent)


def parse_spec(raw: Mapping[str, Any], folder: str | Path = ".") -> ComparisonSpec:
    """A :class:`ComparisonSpec` from the TOML contents ``raw``; relative paths are taken from ``folder``."""
    _known(raw, TOP_LEVEL, "strategy spec key")
    entries = raw.get("strategy")
    if not isinstance(entries, list) or not entries:
        raise StrategySpecError("a strategy spec needs [[strategy]] tables (name, sweep, and optionally "
                                "config and calibration), at least one")
    strategies = tuple(_strategy(entry, Path(folder)) for entry in entries)
    bootstrap = raw.get("bootstrap", {})
    if not isinstance(bootstrap, Mapping):
        raise StrategySpecError("[bootstrap] must be a table (resamples, seed, level)")
    _known(bootstrap, BOOTSTRAP_KEYS, "[bootstrap] key")
    reference = raw.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise StrategySpecError(f"reference={reference!r} is not valid: use the name of a strategy")
    try:
        criteria = parse_criteria(_list(raw, "criteria", DEFAULT_CRITERIA))
        drops, floors = _list(raw, "drops", DEFAULT_DROPS), _list(raw, "floors", ())
        accuracy_floors(100.0, drops, floors)   # checks every drop and floor
        spec = ComparisonSpec(strategies, reference, tuple(drops), tuple(floors), criteria,
                              Bootstrap(**bootstrap))
    except (TypeError, ValueError) as err:
        raise StrategySpecError(str(err)) from None
    return spec


def _strategy(entry: Any, folder: Path) -> Strategy:
    if not isinstance(entry, Mapping):
        raise StrategySpecError("each [[strategy]] must be a table (name, sweep, config, calibration)")
    _known(entry, STRATEGY_KEYS, "[[strategy]] key")
    for key in ("name", "sweep"):
        if key not in entry:
            raise StrategySpecError(f"a [[strategy]] needs {key!r} (got {dict(entry)})")
    for key in STRATEGY_KEYS & set(entry):
        if not isinstance(entry[key], str):
            raise StrategySpecError(f"[[strategy]] {key} = {entry[key]!r} is not valid: use a string")
    calibration = entry.get("calibration")
    try:
        return Strategy(entry["name"], folder / Path(entry["sweep"]).expanduser(), entry.get("config", BASE),
                        None if calibration is None else folder / Path(calibration).expanduser())
    except ValueError as err:
        raise StrategySpecError(str(err)) from None


def _known(table: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        raise StrategySpecError(f"unknown {what}(s) {sorted(unknown)}: use {', '.join(sorted(allowed))}")


def _list(raw: Mapping[str, Any], key: str, default: Any) -> list:
    value = raw.get(key, default)
    if not isinstance(value, (list, tuple)):
        raise StrategySpecError(f"{key} = {value!r} is not valid: give a list, e.g. {key} = {list(default) or [80.0]}")
    return list(value)
