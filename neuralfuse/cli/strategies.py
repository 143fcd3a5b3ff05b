"""``neuralfuse strategies``: which protection pays, at which accuracy floor, from one TOML spec."""
from __future__ import annotations

import click

from neuralfuse.cli.options import output_option


@click.command("strategies", epilog="Example: neuralfuse strategies strategies.toml -o comparison")
@click.argument("spec_path", metavar="SPEC.toml", type=click.Path(exists=True, dir_okay=False))
@output_option("Folder to write strategies.csv, winners.csv, strategies.json, strategies.txt and "
               "strategies.png/svg into (created if new; those files are replaced).", folder=True)
def strategies_command(spec_path: str, output: str) -> None:
    """Compare protections on the same chips: the energy each strategy saves at each accuracy floor.

    SPEC.toml names the strategies ([[strategy]]: name, sweep: a finished `neuralfuse sweep`
    folder, config: base or a generator's name, calibration: its `--on calibration` sweep for
    each chip at its own voltage), the reference whose clean accuracy the floors count from
    (drops = [2, ..., 20] points; or absolute floors), the criteria (default mean, quantile:0.1,
    yield:0.95) and the [bootstrap] over chips (resamples, seed, level). Sweeps measured on other
    chips, images or technology are refused. Prints the table and writes it, with the winners,
    the JSON and the plot, into OUTPUT.
    """
    from neuralfuse.runs import absolute, command_line
    from neuralfuse.strategy_report import format_comparison, write_comparison
    from neuralfuse.strategy_spec import load_spec

    try:
        comparison = load_spec(spec_path).compare()
    except (OSError, ValueError) as err:
        raise click.BadParameter(str(err), param_hint=f"'{spec_path}'") from err
    paths = write_comparison(comparison, output, provenance={"spec": absolute(spec_path),
                                                             "command": command_line()})
    click.echo(format_comparison(comparison))
    click.echo(f"\nwrote {', '.join(p.name for p in paths)} to {output}")
