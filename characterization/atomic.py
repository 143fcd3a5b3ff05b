"""Atomic file output: write to a temporary file next to the target, then ``os.replace``.

Every package writes its outputs through here. It lives in characterization, the package the other
two depend on, because it needs only the standard library: no package of its own is needed for it.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    The temporary file keeps ``path``'s suffix so writers that infer a format from it (matplotlib,
    pandas) behave as for the final name.

    >>> with atomic_path("curves.csv") as tmp:          # doctest: +SKIP
    ...     frame.to_csv(tmp, index=False)
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike[str], value: Any) -> None:
    """Write ``value`` as indented JSON to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2) + "\n")


def check_output_path(path: str | os.PathLike[str], *, folder: bool = False) -> Path:
    """Return ``path`` as a Path if an output file (or, with ``folder``, an output folder) can be
    written there, else raise ``ValueError`` saying why: its parent folder is missing or not
    writable, or it exists as the other kind or read-only. Call it before the work, not after.

    >>> check_output_path("no-such-folder/result.json")
    Traceback (most recent call last):
    ...
    ValueError: cannot write 'no-such-folder/result.json': folder 'no-such-folder' does not exist
    """
    path = Path(path)
    parent = path.parent
    kind = "folder" if folder else "file"
    if path.exists():
        if path.is_dir() != folder:
            raise ValueError(f"cannot write {str(path)!r}: it is a {'file' if folder else 'folder'}, "
                             f"not a {kind}")
        if not os.access(path, os.W_OK):
            raise ValueError(f"cannot write {str(path)!r}: the {kind} is not writable")
    elif not parent.is_dir():
        raise ValueError(f"cannot write {str(path)!r}: folder {str(parent)!r} does not exist")
    elif not os.access(parent, os.W_OK):
        raise ValueError(f"cannot write {str(path)!r}: folder {str(parent)!r} is not writable")
    return path
