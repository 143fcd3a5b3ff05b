"""One name and one range per concept in both command lines, ranges that print readably, and the
former spellings of renamed options still read."""
from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from neuralfuse.cli import RENAMED as NEURALFUSE_RENAMED, main as neuralfuse_main
from neuralfuse.shipped import SETUPS
from sramsim.cli import RENAMED as SRAMSIM_RENAMED, main as sramsim_main
from sramsim.cli_types import BER, SEED, VOLTAGE, WEIGHT_BITS

ROOT = Path(__file__).resolve().parents[1]


def options(main, name: str):
    """(command, option) of every option called ``name`` in the command group ``main``."""
    return [(command, param) for command in main.commands.values() for param in command.params
            if name in param.opts]


@pytest.mark.parametrize("name, kind", [("--ber", BER), ("--randbet-ber", BER), ("--seed", SEED),
                                        ("--chip", SEED), ("--split-seed", SEED), ("--bits", WEIGHT_BITS),
                                        ("--voltage", VOLTAGE), ("--nominal-voltage", VOLTAGE)])
def test_both_command_lines_give_a_setting_the_same_range(name, kind):
    found = options(neuralfuse_main, name) + options(sramsim_main, name)
    assert found
    for command, param in found:
        assert param.type is kind, f"{command.name} {name}"


@pytest.mark.parametrize("main, args, message", [
    (sramsim_main, ["faultmap", "--ber", "0.01", "--chip", "-1", "--arrays", "1", "-o", "x.npz"],
     "-1 is not in the range [0, 2**63)."),
    (neuralfuse_main, ["train-base", "--seed", str(2**63), "-o", "x.pt"], "is not in the range [0, 2**63)."),
    (sramsim_main, ["energy", "--model", "resnet18", "--ber", "0.01", "--bits", "1"],
     "1 is not in the range 2<=x<=8."),
    (sramsim_main, ["energy", "--model", "resnet18", "--ber", "0"], "0.0 is not in the range 0<x<=0.5."),
    (neuralfuse_main, ["evaluate", "--base", __file__, "--ber", "0"], "0.0 is not in the range 0<x<=0.5."),
    (neuralfuse_main, ["evaluate", "--base", __file__, "--ber", "0.01", "--tech", "3nm"],
     "Invalid value for '--tech': unknown technology '3nm'"),
    (neuralfuse_main, ["train-base", "--tech", "3nm", "-o", "x.pt"], "Invalid value for '--tech'"),
])
def test_out_of_range_values_get_a_readable_one_line_error(main, args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.output
    assert "9223372036854775807" not in result.output


def test_an_out_of_range_voltage_says_how_to_extrapolate_from_python():
    result = CliRunner().invoke(sramsim_main, ["faultmap", "--voltage", "0.5", "--chip", "0", "--arrays", "1",
                                               "-o", "x.npz"])
    assert result.exit_code == 2
    assert "from Python as characterization.load('14nm-512x64', extrapolate=True)" in result.output


def test_help_shows_the_seed_range_readably():
    result = CliRunner().invoke(neuralfuse_main, ["train", "--help"])
    assert "[0, 2**63)" in result.output and "9223372036854775807" not in result.output


@pytest.mark.parametrize("main, renamed", [(neuralfuse_main, NEURALFUSE_RENAMED), (sramsim_main, SRAMSIM_RENAMED)])
def test_a_renamed_option_exists_under_its_new_name_only(main, renamed):
    for old, new in renamed.items():
        assert options(main, new) and not options(main, old), old


@pytest.mark.parametrize("main, args, old, new", [
    (neuralfuse_main, ["train", "--n-chips", "0"], "--n-chips", "--chips-per-step"),
    (neuralfuse_main, ["train", "--init-generator=nowhere"], "--init-generator", "--init-run"),
    (neuralfuse_main, ["evaluate", "--generator-run", "nowhere"], "--generator-run", "--run"),
    (neuralfuse_main, ["sweep", "--generator-run", "nowhere"], "--generator-run", "--run"),
    (sramsim_main, ["energy", "--model", "resnet18", "--ber", "0.01", "--weight-bits", "1"], "--weight-bits", "--bits"),
    (sramsim_main, ["faultmap", "--ber", "0.01", "--seed", "-1", "--arrays", "1", "-o", "x.npz"], "--seed", "--chip"),
])
def test_a_former_spelling_reads_as_the_new_option_with_a_notice(main, args, old, new):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and f"Invalid value for '{new}'" in result.output   # its value went to NEW
    assert result.stderr.splitlines()[0].endswith(f"{old} is deprecated, use {new}")


def test_a_command_written_with_a_former_spelling_still_runs(tmp_path):
    shipped = SETUPS["resnet18-w0.25"]
    out = tmp_path / "show.png"
    result = CliRunner().invoke(neuralfuse_main, ["show", "--generator-run", str(shipped.generator_run),
                                                  "--per-class", "1", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0 and "show: --generator-run is deprecated, use --run" in result.stderr


def readme_option_table() -> list[tuple[set[str], set[str]]]:
    """(option names, commands) of each row of the README's option table; sramsim commands as
    'sramsim NAME'."""
    section = (ROOT / "README.md").read_text().split("### Option names", 1)[1].split("\n#", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            names = {name for quoted in re.findall(r"`([^`]+)`", cells[0]) for name in quoted.split("/")}
            rows.append((names, {command.strip() for command in cells[2].split(",")}))
    return rows


def test_the_readme_lists_every_option_once_with_exactly_the_commands_that_take_it():
    taking: dict[str, set[str]] = {}
    for prefix, main in (("", neuralfuse_main), ("sramsim ", sramsim_main)):
        for command in main.commands.values():
            for param in command.params:
                for name in (*param.opts, *param.secondary_opts) if isinstance(param, click.Option) else ():
                    taking.setdefault(name, set()).add(prefix + command.name)
    rows = readme_option_table()
    listed = [name for names, _ in rows for name in names]
    assert sorted(listed) == sorted(taking)   # every option, each once
    for names, commands in rows:
        for name in names:
            assert commands == taking[name], name
