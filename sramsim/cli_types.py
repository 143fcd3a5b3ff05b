"""Click parameter types the ``sramsim`` and ``neuralfuse`` command lines share.

- :class:`OutputPath`: a file or folder to write, checked when the command line is parsed (so a
  missing folder is a usage error before any work, not a traceback after it);
- :class:`IntInterval`: an integer range that prints as ``[0, 2**63)``, not as 19 digits;
  :data:`SEED` is the chip and training seed range;
- :data:`BER` and :data:`WEIGHT_BITS`: the one range of each, so that both command lines agree.
"""
from __future__ import annotations

import os
from typing import Any

import click

from characterization.atomic import check_output_path
from sramsim.faults import MAX_SEED
from sramsim.quant import MAX_BITS, MIN_BITS


class OutputPath(click.ParamType):
    """A path a command writes: a file (default) or, with ``folder=True``, a folder.

    Its parent folder must exist and be writable, and an existing path must be of the right kind
    and writable (:func:`characterization.atomic.check_output_path`). Converts to ``str``.
    """

    def __init__(self, *, folder: bool = False) -> None:
        self.folder = folder
        self.name = "folder" if folder else "file"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            check_output_path(os.fspath(value), folder=self.folder)
        except (TypeError, ValueError) as err:
            self.fail(str(err), param, ctx)
        return os.fspath(value)


class IntInterval(click.IntRange):
    """``click.IntRange`` whose help and errors show the range as ``[low, high)`` with ``high`` as
    given in ``high_text`` (e.g. ``"2**63"``): "-1 is not in the range [0, 2**63)."."""

    def __init__(self, low: int, high: int, high_text: str) -> None:
        super().__init__(low, high, max_open=True)
        self.high_text = high_text

    def _describe_range(self) -> str:
        return f"[{self.min}, {self.high_text})"


SEED = IntInterval(0, MAX_SEED, "2**63")
"""A seed: an integer in [0, 2**63)."""

BER = click.FloatRange(0, 0.5, min_open=True)
"""A bit-error rate (fraction of faulty cells) in (0, 0.5]. Zero is excluded in both command lines:
the fault-free model is what every evaluation already reports as CA (clean accuracy), and a BER of
0 has no voltage (the technology curve reaches it only at an infinite voltage), so no energy."""

WEIGHT_BITS = click.IntRange(MIN_BITS, MAX_BITS)
"""Bits per stored weight: the quantizer's range, 2..8."""
