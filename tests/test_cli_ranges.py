"""One range per concept in both command lines, and ranges that print readably."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from neuralfuse.cli import main as neuralfuse_main
from sramsim.cli import main as sramsim_main
from sramsim.cli_types import BER, SEED, WEIGHT_BITS


def options(main, name: str):
    """(command, option) of every option called ``name`` in the command group ``main``."""
    return [(command, param) for command in main.commands.values() for param in command.params
            if name in param.opts]


@pytest.mark.parametrize("name, kind", [("--ber", BER), ("--seed", SEED), ("--split-seed", SEED),
                                        ("--bits", WEIGHT_BITS), ("--weight-bits", WEIGHT_BITS)])
def test_both_command_lines_give_a_setting_the_same_range(name, kind):
    found = options(neuralfuse_main, name) + options(sramsim_main, name)
    assert found
    for command, param in found:
        assert param.type is kind, f"{command.name} {name}"


@pytest.mark.parametrize("main, args, message", [
    (sramsim_main, ["faultmap", "--ber", "0.01", "--seed", "-1", "--arrays", "1", "-o", "x.npz"],
     "-1 is not in the range [0, 2**63)."),
    (neuralfuse_main, ["train-base", "--seed", str(2**63), "-o", "x.pt"], "is not in the range [0, 2**63)."),
    (sramsim_main, ["energy", "--model", "resnet18", "--ber", "0.01", "--weight-bits", "1"],
     "1 is not in the range 2<=x<=8."),
    (sramsim_main, ["energy", "--model", "resnet18", "--ber", "0"], "0.0 is not in the range 0<x<=0.5."),
    (neuralfuse_main, ["evaluate", "--base", __file__, "--ber", "0"], "0.0 is not in the range 0<x<=0.5."),
])
def test_out_of_range_values_get_a_readable_one_line_error(main, args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.output
    assert "9223372036854775807" not in result.output


def test_help_shows_the_seed_range_readably():
    result = CliRunner().invoke(neuralfuse_main, ["train", "--help"])
    assert "[0, 2**63)" in result.output and "9223372036854775807" not in result.output
