"""Click parameter types the ``sramsim`` and ``neuralfuse`` command lines share.

- :class:`RenamingGroup`: a command group whose commands still take the former spellings of
  renamed options, with a one-line deprecation notice;
- :class:`OutputPath`: a file or folder to write, checked when the command line is parsed (so a
  missing folder is a usage error before any work, not a traceback after it);
- :class:`IntInterval`: an integer range that prints as ``[0, 2**63)``, not as 19 digits;
  :data:`SEED` is the chip and training seed range;
- :data:`BER`, :data:`VOLTAGE` and :data:`WEIGHT_BITS`: the one range of each, so that both
  command lines agree;
- :data:`TECH`: a technology name or characterization file, checked when parsed.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import click

from characterization.atomic import check_output_path
from sramsim.faults import MAX_SEED
from sramsim.quant import MAX_BITS, MIN_BITS


class RenamingGroup(click.Group):
    """A command group whose commands still take the former spellings of renamed options.

    ``renamed`` maps a former spelling to the current one (``{"--n-chips": "--chips-per-step"}``);
    a command that has the current option (and no option of the former name) reads the former one
    as it, after a one-line notice on stderr. The former spellings appear in no help.
    """

    def __init__(self, *args: Any, renamed: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.renamed = dict(renamed or {})

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, command, rest = super().resolve_command(ctx, args)
        if command is None:
            return name, command, rest
        current = {opt for param in command.params for opt in param.opts}
        spelled = []
        for i, arg in enumerate(rest):
            if arg == "--":             # what follows is no option
                spelled.extend(rest[i:])
                break
            old, equals, value = arg.partition("=")
            new = self.renamed.get(old)
            if new in current and old not in current:
                if not ctx.resilient_parsing:   # (shell completion parses resiliently)
                    click.echo(f"{ctx.info_name} {name}: {old} is deprecated, use {new}", err=True)
                arg = new + equals + value
            spelled.append(arg)
        return name, command, spelled


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

VOLTAGE = click.FloatRange(0, min_open=True)
"""A supply voltage in units of Vmin: positive (whether the technology is characterized there is
checked against the technology the command uses, and the error names its range)."""

WEIGHT_BITS = click.IntRange(MIN_BITS, MAX_BITS)
"""Bits per stored weight: the quantizer's range, 2..8."""


class Technology(click.ParamType):
    """A technology name or characterization CSV (:func:`characterization.load`), checked when the
    command line is parsed, so that the error names the option; the value stays the string."""

    name = "tech"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        import characterization

        try:
            characterization.load(value)
        except (OSError, ValueError) as err:
            self.fail(str(err), param, ctx)
        return value


TECH = Technology()
