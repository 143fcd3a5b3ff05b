"""Reading the TOML specs of ``neuralfuse grid`` (:mod:`neuralfuse.grid`) and ``neuralfuse
strategies`` (:mod:`neuralfuse.strategy_spec`)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read_toml(path: str | Path, what: str, error: type[ValueError]) -> dict[str, Any]:
    """The contents of the TOML file at ``path``, or ``error`` naming ``what`` (e.g. ``"grid
    spec"``), the path and why it cannot be read."""
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise error(f"cannot read {what} {str(path)!r}: {err}") from None
