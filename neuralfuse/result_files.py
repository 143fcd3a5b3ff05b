"""Where evaluation results are saved, and the settings that tell two of them apart.

An evaluation's numbers depend on its settings: the operating point, the memory config (bit
width, storage format, fault model, layout, technology: :class:`sramsim.MemoryConfig`), the chips
(seeds, or fault maps), the images (split, dataset, image size, count) and the arithmetic.
:func:`evaluation_settings` holds them in one dict; the file name of a result saved in a run
directory is built from all of it (:func:`result_file`), and a file already at a target path is
replaced only when it was made with the same settings (:func:`check_result_target`), so a quick
check never overwrites a full evaluation. A new setting is one more entry of that dict.

    >>> settings = evaluation_settings(point=OperatingPoint.resolve(ber=0.01), memory=MemoryConfig(),
    ...     chips=range(10), samples=2000, split="test", dataset="default")
    >>> result_file("runs/unets", settings).name
    'evaluation-ber0.01-8bit-stuck-at-arrays-14nm-512x64-chips0-9-test-default-2000images.json'

A setting at a value that needs no name (symmetric storage, fp32, a dataset's own image size) is
left out, so the names of results saved before it existed stay the same. Results saved before
this scheme (``evaluation-<point>-<bits>bit-<fault model>[-<layout>]...``, as ``reference/`` holds
them) are read as they are; :func:`settings_of` recovers their settings.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from characterization.atomic import check_output_path
from neuralfuse.precision import DEFAULT_PRECISION
from sramsim.memory import MemoryConfig
from sramsim.operating_point import OperatingPoint
from sramsim.storage import DEFAULT_STORAGE

RESULT_PREFIX = "evaluation-"
"""Evaluation results saved in a run directory are named ``evaluation-*.json`` (:func:`result_file`)."""


def evaluation_settings(*, point: OperatingPoint, memory: MemoryConfig, chips: Sequence[int],
                        samples: int, split: str, dataset: str, image_size: int | None = None,
                        precision: str = DEFAULT_PRECISION,
                        fault_maps: Sequence[str] | None = None) -> dict[str, str]:
    """The settings that change an evaluation's numbers, in file-name order, as short texts
    (``None`` for a setting left at a value that needs no name, such as symmetric storage, a
    dataset's own image size or fp32 arithmetic). ``chips`` are the chip seeds; ``fault_maps``
    the fingerprints of the chips' fault maps (:func:`neuralfuse.chips.map_fingerprint`) when the
    chips are maps, named by the seeds and a digest of the maps.
    """
    chips = list(chips)
    consecutive = chips == list(range(chips[0], chips[0] + len(chips)))
    seeds = f"{chips[0]}-{chips[-1]}" if consecutive else ",".join(map(str, chips))
    if fault_maps is not None:
        digest = hashlib.sha256(",".join(fault_maps).encode()).hexdigest()[:8]
    return {
        "point": f"ber{point.ber:g}" if point.voltage is None else f"v{point.voltage:g}",
        "bits": f"{memory.bits}bit",
        "storage": None if memory.storage == DEFAULT_STORAGE else memory.storage,
        "fault_model": memory.fault_model,
        "layout": memory.layout,
        "tech": Path(memory.tech).stem,
        "chips": f"chips{seeds}" if fault_maps is None else f"maps{seeds}-{digest}",
        "split": split,
        "dataset": dataset,
        "image_size": None if image_size is None else f"{image_size}px",
        "samples": f"{samples}images",
        "precision": None if precision == DEFAULT_PRECISION else precision,
    }


def result_memory(result: Mapping[str, Any]) -> MemoryConfig:
    """The memory config of a saved :func:`neuralfuse.evaluation.evaluate` result: its
    ``memory``, or for a result saved before memory configs its flat ``bits``, ``fault_model`` and
    ``layout`` (the arrays layout when missing), the technology of its operating point and
    symmetric storage."""
    if "memory" in result:
        return MemoryConfig.from_record(result)
    return MemoryConfig.from_record({**result, "tech": result["operating_point"]["tech"]})


def settings_of(result: Mapping[str, Any]) -> dict[str, str]:
    """The :func:`evaluation_settings` of a saved :func:`neuralfuse.evaluation.evaluate` result,
    also of one saved before memory configs or provenance were recorded (then: see
    :func:`result_memory`, the test split, dataset "unknown")."""
    provenance = result.get("provenance") or {}
    return evaluation_settings(
        point=OperatingPoint(**result["operating_point"]), memory=result_memory(result),
        chips=result["chips"], samples=result["samples"], split=provenance.get("split", "test"),
        dataset=provenance.get("dataset") or "unknown", image_size=provenance.get("image_size"),
        precision=result.get("precision", DEFAULT_PRECISION), fault_maps=result.get("fault_maps"))


def result_file(run_dir: str | os.PathLike[str], settings: Mapping[str, str | None]) -> Path:
    """``RUN_DIR/evaluation-<every setting, in order>.json`` for :func:`evaluation_settings`."""
    name = "-".join(text for text in settings.values() if text is not None)
    return Path(run_dir) / f"{RESULT_PREFIX}{name.replace(os.sep, '_')}.json"


def check_result_target(path: str | os.PathLike[str], settings: Mapping[str, str | None],
                        overwrite: bool = False) -> None:
    """Raise ValueError if ``path`` holds an evaluation made with other ``settings`` (or a file that
    is not an evaluation), unless ``overwrite``; the message names the settings that differ."""
    path = Path(path)
    if overwrite or not path.is_file():
        return
    try:
        existing = settings_of(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{str(path)!r} exists and is not an evaluation result: give another "
                         "path, or --overwrite to replace it") from None
    differ = [f"{key} {existing.get(key)} -> {value}" for key, value in settings.items()
              if existing.get(key) != value]
    if differ:
        raise ValueError(f"{str(path)!r} holds an evaluation with other settings ({'; '.join(differ)}): "
                         "give another path, or --overwrite to replace it")


def inside_package(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` lies inside the installed ``neuralfuse`` package (its shipped assets)."""
    package = Path(__file__).resolve().parent
    return Path(path).resolve().is_relative_to(package)


def evaluation_target(settings: Mapping[str, str | None], run_dir: str | os.PathLike[str] | None = None,
                      json_path: str | os.PathLike[str] | None = None, overwrite: bool = False) -> Path | None:
    """Where ``neuralfuse evaluate`` saves a result: ``json_path`` if given, else
    :func:`result_file` in ``run_dir``, else nowhere (None). Raises ValueError, before any work,
    for a default path inside the installed package (the shipped generators' run directories),
    an unwritable path, or a file there made with other settings (:func:`check_result_target`).
    """
    if json_path is None and run_dir is not None and inside_package(run_dir):
        raise ValueError(f"{str(run_dir)!r} is inside the installed neuralfuse package, where "
                         "results are not saved by default: give --json PATH to save them")
    path = Path(json_path) if json_path is not None else None if run_dir is None else result_file(run_dir, settings)
    if path is not None:
        check_output_path(path)
        check_result_target(path, settings, overwrite)
    return path
