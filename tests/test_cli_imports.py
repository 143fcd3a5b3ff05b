"""Asking a command line for help loads none of the heavy optional dependencies (numba compiles
kernels, SCALE-SIM, Ray and matplotlib are needed only by the work some commands do)."""
from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("numba", "scalesim", "ray", "matplotlib")

HELP_OF_EVERY_COMMAND = """
import sys
from {package}.cli import main
for args in ([], *([name] for name in main.commands)):
    assert main([*args, "--help"], standalone_mode=False) == 0, args
print(sorted(name for name in {heavy} if name in sys.modules))
"""


@pytest.mark.parametrize("package", ["neuralfuse", "sramsim"])
def test_help_of_every_command_loads_no_heavy_dependency(package):
    code = HELP_OF_EVERY_COMMAND.format(package=package, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage:" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"
