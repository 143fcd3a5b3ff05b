"""Resumable runs: the record that says what a run is, and the check that lets it resume.

Base-model training, EOPM training and voltage sweeps are long, so each writes its state as it
goes and resumes when the same command is repeated. Each keeps a *record*: plain values saying
what the run is (settings, fingerprints of the models and data), where its inputs came from
(``provenance``: absolute paths, dataset names), the ``command`` and the package ``versions``.
A run resumes only if its *identity* (the record less what may change between sessions, which
each run type decides) is the same; otherwise the error lists every difference.

    >>> record_differences({"config": {"lam": 5.0, "seed": 0}}, {"config": {"lam": 1.0, "seed": 0}})
    ['config.lam: 5.0 before, 1.0 now']
"""
from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from characterization.atomic import write_json

#: Parts of a record that never decide whether a run may resume.
SESSION_KEYS = ("command", "versions")


def package_versions() -> dict[str, str]:
    """Versions of this package, torch, numpy and Python, for run records."""
    from importlib.metadata import PackageNotFoundError, version

    import numpy as np
    import torch

    try:
        own = version("lowvolt-neuralfuse")
    except PackageNotFoundError:
        own = "unknown"
    return {"lowvolt-neuralfuse": own, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def command_line(program: str = "neuralfuse") -> str:
    """The command that started this process, as ``program`` followed by its arguments."""
    return " ".join([program, *sys.argv[1:]])


def absolute(path: str | os.PathLike[str] | None) -> str | None:
    """``path`` resolved to an absolute path string (None stays None), for provenance records."""
    return None if path is None else str(Path(path).resolve())


def with_provenance(record: dict[str, Any], provenance: Mapping[str, Any] | None) -> dict[str, Any]:
    """``record`` plus ``provenance`` (less its ``command``), the command and the versions.

    The command is ``provenance["command"]`` when given, else this process's command line.
    """
    provenance = dict(provenance or {})
    command = provenance.pop("command", " ".join(sys.argv))
    return {**record, "provenance": provenance, "command": command, "versions": package_versions()}


def record_differences(old: Mapping, new: Mapping, prefix: str = "") -> list[str]:
    """``"key: old before, new now"`` for every (nested) key whose value differs."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            out += record_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} before, {b!r} now")
    return out


def start_run(folder: str | os.PathLike[str], record_name: str, record: dict[str, Any],
              identity: Callable[[dict[str, Any]], dict[str, Any]], *, what: str,
              error: type[ValueError] = ValueError) -> Path:
    """Create ``folder`` for a run, or check that it holds the same run; write its record.

    ``folder`` must be new, empty, or hold ``record_name`` whose ``identity`` equals that of
    ``record``; anything else raises ``error`` naming the folder (and every difference). ``what``
    names such a folder in messages, e.g. ``"training run directory"``. Returns the folder.
    """
    path = Path(folder)
    record_path = path / record_name
    if record_path.is_file():
        changes = record_differences(identity(json.loads(record_path.read_text())), identity(record))
        if changes:
            raise error(f"{str(path)!r} holds a run with other settings ({'; '.join(changes)}): "
                        "repeat its command to resume it, or choose a new folder")
    elif path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise error(f"{str(path)!r} exists and is not a {what}: choose a new or empty folder")
    path.mkdir(parents=True, exist_ok=True)
    write_json(record_path, record)
    return path
