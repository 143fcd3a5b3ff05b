"""Argument checks with one message shape, for all three packages (scikit-learn's ``check_scalar``).

It lives here, in the package every other one depends on, because it needs nothing but the
standard library: sramsim and neuralfuse import it without importing each other.

    >>> check_scalar(3, "chips", int, min_val=1)
    3
    >>> check_scalar(True, "chips", int, min_val=1)
    Traceback (most recent call last):
    ...
    ValueError: chips=True is not valid: use an integer >= 1
    >>> check_scalar(0.0, "lr", float, min_val=0, include_boundaries="right")
    Traceback (most recent call last):
    ...
    ValueError: lr=0.0 is not valid: use a number > 0
"""
from __future__ import annotations

import math
import numbers
from typing import Any

_TYPES = {int: (numbers.Integral, "an integer"), float: (numbers.Real, "a number")}
_BOUNDARIES = ("both", "left", "right", "neither")


def check_scalar(value: Any, name: str, target_type: type, *, min_val: float | None = None,
                 max_val: float | None = None, include_boundaries: str = "both",
                 allowed: str | None = None) -> Any:
    """Return ``value`` if it is a ``target_type`` (int or float) within the bounds, else raise.

    ``int`` accepts any integral number (NumPy's too), ``float`` any real number; booleans are
    never numbers here, and NaN is never within bounds. ``include_boundaries`` is "both", "left"
    (min only), "right" (max only) or "neither". The ValueError reads ``"name=value is not
    valid: use ..."``, where ``allowed`` (e.g. ``"an integer in [0, 2**63)"``) replaces the
    description built from the type and bounds.
    """
    if target_type not in _TYPES or include_boundaries not in _BOUNDARIES:
        raise ValueError(f"check_scalar checks int or float with boundaries {_BOUNDARIES}, "
                         f"not {target_type!r} with {include_boundaries!r}")
    abc, noun = _TYPES[target_type]
    low_closed = include_boundaries in ("both", "left")
    high_closed = include_boundaries in ("both", "right")
    ok = isinstance(value, abc) and not isinstance(value, bool) and not (
        isinstance(value, numbers.Real) and math.isnan(value))
    if ok and min_val is not None:
        ok = value >= min_val if low_closed else value > min_val
    if ok and max_val is not None:
        ok = value <= max_val if high_closed else value < max_val
    if not ok:
        shown = value.item() if type(value).__module__ == "numpy" and hasattr(value, "item") else value
        raise ValueError(f"{name}={shown!r} is not valid: use "
                         f"{allowed or _describe(noun, min_val, max_val, low_closed, high_closed)}")
    return value


def _describe(noun: str, low: float | None, high: float | None, low_closed: bool, high_closed: bool) -> str:
    """``"an integer >= 1"``, ``"a number in (0, 1]"``, ... for the message of :func:`check_scalar`."""
    if low is not None and high is not None:
        return f"{noun} in {'[' if low_closed else '('}{low:g}, {high:g}{']' if high_closed else ')'}"
    if low is not None:
        return f"{noun} {'>=' if low_closed else '>'} {low:g}"
    if high is not None:
        return f"{noun} {'<=' if high_closed else '<'} {high:g}"
    return noun
