"""``neuralfuse demo``: NeuralFuse on a shipped base model and generator, end to end."""
from __future__ import annotations

import click

from characterization import DEFAULT_TECH
from neuralfuse.cli.options import (CRITERION_HELP, chips_option, device_option, layout_option,
                                    output_option, parse_criterion, parse_voltages, precision_option,
                                    progress_option, storage_option)
from neuralfuse.shipped import DEFAULT_SETUP, SETUPS


@click.command("demo", epilog="Example: neuralfuse demo -o demo-output\n\n"
               "The small setup: neuralfuse demo --setup resnet18-w0.25 -o demo-small")
@output_option("Output folder: new, empty, or an unfinished demo (then it resumes).", folder=True,
               default="neuralfuse-demo", show_default=True)
@click.option("--setup", type=click.Choice(list(SETUPS)), default=DEFAULT_SETUP, show_default=True,
              help="Shipped base model and generator: vgg11 (full width, the paper's regime: the "
              "generator costs ~3% of the model's weight reads) or resnet18-w0.25 (small and fast: 26%).")
@click.option("--voltages", callback=parse_voltages, default=None,
              help="Voltages to sweep, in units of Vmin: START:STOP:STEP or a list [default: the "
              "setup's, 1.00 down to 0.78]; the generator's operating voltage is always added.")
@chips_option(None, "Number of evaluation chips [default: the setup's, 10].")
@click.option("--samples", type=click.IntRange(1, 2000), default=None,
              help="Test images, a fixed random subset of the default test split's 2,000 "
              "[default: the setup's, 1000].")
@click.option("--min-accuracy", type=click.FloatRange(0, 100), default=None,
              help="Accuracy floor (PA, %) the summary leads with [default: the base model's "
              "clean accuracy minus 5 points].")
@click.option("--criterion", "criteria", multiple=True, callback=parse_criterion,
              help=CRITERION_HELP + " Repeat for a table per criterion (the first leads), e.g. "
              "--criterion mean --criterion quantile:0.1 --criterion yield:0.95 [default: mean].")
@layout_option("the shipped generator's training")
@storage_option("the shipped generator's training")
@progress_option
@device_option
@precision_option
def demo_command(output: str, setup: str, voltages: tuple[float, ...] | None, chips: int | None,
                 samples: int | None, min_accuracy: float | None, criteria: tuple, layout: str | None,
                 storage: str | None, progress: bool, device, precision: str) -> None:
    """The main job: NeuralFuse on a shipped base model and generator, on the default dataset.

    Sweeps the weight-memory voltage from Vmin down past the generator's operating voltage with
    and without NeuralFuse, then writes the sweep table, the plots (pareto, accuracy, curves; PNG
    and SVG) and summary.txt / summary.json into OUTPUT. The summary leads with the energy saved
    at accuracy floors, with and without NeuralFuse. Takes under ten minutes on two CPU cores.
    """
    import characterization
    from neuralfuse.demo import format_summary, run_demo

    if voltages is not None:
        try:
            characterization.load(DEFAULT_TECH).ber(list(voltages))
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--voltages") from err
    click.echo(f"NeuralFuse demo ({setup}): writing into {output}/")
    try:
        summary = run_demo(output, setup=setup, voltages=voltages, chips=chips, samples=samples,
                           min_accuracy=min_accuracy, criteria=criteria or ("mean",), layout=layout,
                           storage=storage, progress=progress, device=device, precision=precision)
    except (OSError, ValueError) as err:
        raise click.UsageError(str(err)) from err
    click.echo("")
    click.echo(format_summary(summary))
    click.echo(f"\ndone: results are in {output}/")
