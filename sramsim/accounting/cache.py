"""A small on-disk cache of access counts, keyed by a hash of (engine, config, topology).

Files live in ``$SRAMSIM_CACHE_DIR`` or, if unset, ``~/.cache/sramsim``; each is a JSON file
named by the SHA-256 of its key, holding the key and the value, written atomically. A file that
cannot be read or whose key differs is treated as a miss.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from characterization.atomic import atomic_path

ENV_VAR = "SRAMSIM_CACHE_DIR"


def cache_dir() -> Path:
    """The cache folder: ``$SRAMSIM_CACHE_DIR`` or ``~/.cache/sramsim``."""
    return Path(os.environ.get(ENV_VAR) or Path.home() / ".cache" / "sramsim")


def _path(key: dict) -> tuple[Path, str]:
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return cache_dir() / f"accesses-{hashlib.sha256(text.encode()).hexdigest()[:32]}.json", text


def lookup(key: dict):
    """The value stored under ``key``, or None."""
    path, text = _path(key)
    try:
        entry = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if json.dumps(entry.get("key"), sort_keys=True, separators=(",", ":")) != text:
        return None
    return entry.get("value")


def store(key: dict, value) -> None:
    """Store a JSON-serialisable ``value`` under ``key``."""
    path, _ = _path(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"key": key, "value": value}))
