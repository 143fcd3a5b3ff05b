"""The ``neuralfuse`` command line: a thin click layer over the library.

One module per stage of the pipeline (:mod:`.train_base`, :mod:`.train`, :mod:`.grid`,
:mod:`.evaluate`, :mod:`.sweep`, :mod:`.strategies`, :mod:`.demo`); the options they share are
declared once in :mod:`.options`, and :mod:`.inputs` loads their inputs with errors that name the
option.
"""
from __future__ import annotations

import click

from neuralfuse.cli.demo import demo_command
from neuralfuse.cli.evaluate import compare_command, evaluate_command, show_command
from neuralfuse.cli.grid import grid_command
from neuralfuse.cli.strategies import strategies_command
from neuralfuse.cli.sweep import pareto_command, sweep_command
from neuralfuse.cli.train import train_command
from neuralfuse.cli.train_base import train_base_command
from sramsim.cli_types import RenamingGroup

RENAMED = {"--generator-run": "--run", "--init-generator": "--init-run", "--n-chips": "--chips-per-step"}
"""Former spellings of options (old -> current), still read with a deprecation notice."""


class _PipelineOrder(RenamingGroup):
    """A group that lists its commands in the order they are added: the pipeline's order."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=_PipelineOrder, renamed=RENAMED, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lowvolt-neuralfuse")
def main() -> None:
    """NeuralFuse: train input transformations that keep quantized models accurate at low voltage."""


for _command in (train_base_command, train_command, grid_command, evaluate_command, compare_command,
                 show_command, sweep_command, pareto_command, strategies_command, demo_command):
    main.add_command(_command)
