"""The ``neuralfuse`` command line: a thin click layer over the library."""
from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lowvolt-neuralfuse")
def main() -> None:
    """NeuralFuse: train input transformations that keep quantized models accurate at low voltage."""


@main.command("train-base", epilog="Example: neuralfuse train-base --model resnet18 --width 0.25 "
              "--dataset cifar10 --data-root ~/data/cifar10 --epochs 30 -o resnet18-w025.pt")
@click.option("--model", default="resnet18", show_default=True,
              help="Base architecture: resnet18, resnet50, vgg11, vgg16 or vgg19.")
@click.option("--width", type=click.FloatRange(0, min_open=True), default=0.25, show_default=True,
              help="Channel width multiplier (1.0 = the paper's network).")
@click.option("--dataset", default="default", show_default=True,
              help="Dataset name; 'default' is the small CIFAR-10 subset shipped with the package.")
@click.option("--data-root", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder holding the dataset (not needed for 'default').")
@click.option("--epochs", type=click.IntRange(1), default=30, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=0.1, show_default=True,
              help="Peak learning rate at batch size 128 (scaled linearly with the batch size).")
@click.option("--weight-decay", type=click.FloatRange(0), default=5e-4, show_default=True)
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True)
@click.option("--bits", type=click.IntRange(2, 8), default=8, show_default=True,
              help="Weight bit width of the quantization-aware training.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@click.option("--limit-batches", type=click.IntRange(1), default=None,
              help="Train on at most N batches per epoch (quick smoke runs).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), required=True,
              help="Checkpoint to write; the resumable state lives in OUTPUT.partial meanwhile.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
def train_base_command(output: str, progress: bool, **options) -> None:
    """Train a base model with 8-bit quantization-aware training.

    Rerunning an interrupted command resumes it exactly from OUTPUT.partial. Per-epoch metrics go
    to OUTPUT's stem + .metrics.csv.
    """
    from neuralfuse.train_base import BaseTrainer, TrainBaseConfig

    try:
        trainer = BaseTrainer(TrainBaseConfig(**options), output, progress=progress)
    except (ValueError, OSError) as err:
        raise click.UsageError(str(err)) from err
    meta = trainer.run()
    click.echo(f"saved {output}: {meta['arch']} width {meta['width']:g}, "
               f"clean test accuracy {meta['test_acc']:.2%} after {meta['epoch']} epochs")


def _parse_voltages(ctx: click.Context, param: click.Parameter, value: str | None):
    """``--voltages`` callback: START:STOP:STEP or a comma-separated list, as a tuple of floats."""
    if value is None:
        return None
    from neuralfuse.tradeoff import parse_voltages

    try:
        return parse_voltages(value)
    except ValueError as err:
        raise click.BadParameter(str(err), ctx, param) from err


@main.command("sweep", epilog="Example: neuralfuse sweep --base base.pt --generator runs/unets "
              "--voltages 0.76:1.00:0.02 --chips 10 -o sweep-unets")
@click.option("--base", "base_path", type=click.Path(exists=True, dir_okay=False), required=True,
              help="Base-model checkpoint (from `neuralfuse train-base`).")
@click.option("--generator", "generator_dirs", type=click.Path(exists=True, file_okay=False),
              multiple=True, help="Training run directory of a generator (from `neuralfuse train`); "
              "repeat for several. Each is named after its directory.")
@click.option("--voltages", required=True, callback=_parse_voltages,
              help="Supply voltages in units of Vmin: START:STOP:STEP (both ends included) or a "
              "comma-separated list.")
@click.option("--chips", type=click.IntRange(1), default=10, show_default=True,
              help="Number of evaluation chips (the evaluation seed stream, never used in training).")
@click.option("--fault-model", type=click.Choice(["stuck-at", "flip"]), default="stuck-at",
              show_default=True)
@click.option("--tech", default="14nm-512x64", show_default=True,
              help="Technology name or characterization file.")
@click.option("--bits", type=click.IntRange(2, 8), default=None,
              help="Weight bit width [default: the checkpoint's, else 8].")
@click.option("--dataset", default="default", show_default=True, help="Dataset name (test split).")
@click.option("--data-root", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder holding the dataset (not needed for 'default').")
@click.option("--samples", type=click.IntRange(1), default=None,
              help="Evaluate on a fixed random subset of N test samples [default: all].")
@click.option("--batch-size", type=click.IntRange(1), default=500, show_default=True)
@click.option("-o", "--output", type=click.Path(file_okay=False, writable=True), required=True,
              help="Sweep folder: new, empty, or holding this same sweep (then it resumes).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
def sweep_command(base_path: str, generator_dirs: tuple[str, ...], voltages: tuple[float, ...],
                  chips: int, fault_model: str, tech: str, bits: int | None, dataset: str,
                  data_root: str | None, samples: int | None, batch_size: int, output: str,
                  progress: bool) -> None:
    """Measure a base model, alone and behind generators, at every voltage on every chip.

    Writes OUTPUT/sweep.csv (one row per configuration and voltage: BER, CA, PA mean ± std over
    chips, weight-memory accesses, energy relative to Vmin, energy saving by Eq. 6), chips.csv,
    sweep.json (arguments, seeds, versions) and the plots pareto, accuracy and curves (PNG, SVG).
    Finished points are kept: rerunning an interrupted command computes only what is missing.
    """
    import sys
    from pathlib import Path

    import characterization
    from neuralfuse.checkpoint import load_base_model
    from neuralfuse.data import load_dataset
    from neuralfuse.eopm import load_generator
    from neuralfuse.plots import write_sweep_plots
    from neuralfuse.tradeoff import fixed_subset, sweep

    try:
        characterization.load(tech).ber(list(voltages))
    except ValueError as err:  # unknown technology, or voltages outside its range
        raise click.BadParameter(str(err), param_hint="--voltages/--tech") from err
    try:
        base, meta = load_base_model(base_path)
    except (OSError, ValueError) as err:
        raise click.BadParameter(str(err), param_hint="--base") from err
    generators = {}
    for run_dir in generator_dirs:
        name = Path(run_dir).resolve().name
        if name in generators or name == "base":
            raise click.BadParameter(f"two configurations would be named {name!r}: give the run "
                                     "directories distinct names (not 'base')", param_hint="--generator")
        try:
            generators[name] = load_generator(run_dir, base=base)[0]
        except (OSError, ValueError) as err:
            raise click.BadParameter(str(err), param_hint="--generator") from err
    try:
        test_set = fixed_subset(load_dataset(dataset, data_root, split="test"), samples)
        table = sweep(base, test_set, voltages, generators=generators, chips=chips, tech=tech,
                      fault_model=fault_model, bits=bits or meta.get("bits", 8),
                      batch_size=batch_size, out_dir=output, progress=progress,
                      provenance={"base": str(Path(base_path).resolve()),
                                  "generators": {n: str(Path(d).resolve()) for n, d in
                                                 zip(generators, generator_dirs)},
                                  "dataset": dataset, "samples": samples,
                                  "command": " ".join(["neuralfuse", *sys.argv[1:]])})
    except (OSError, ValueError) as err:
        raise click.UsageError(str(err)) from err
    write_sweep_plots(table, output, tech)
    click.echo(f"wrote {len(table)} points to {Path(output) / 'sweep.csv'} and the plots to {output}")


@main.command("pareto", epilog="Example: neuralfuse pareto sweep-unets --min-accuracy 80")
@click.argument("sweep_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--min-accuracy", type=click.FloatRange(0, 100), required=True,
              help="Lowest acceptable mean perturbed accuracy, in percent.")
def pareto_command(sweep_dir: str, min_accuracy: float) -> None:
    """The lowest-energy operating point per configuration that keeps mean PA >= MIN_ACCURACY.

    Prints them and the best overall, and writes them to SWEEP_DIR/pareto.json.
    """
    import json
    from pathlib import Path

    from characterization.atomic import atomic_path
    from neuralfuse.tradeoff import format_operating_points, load_sweep, operating_points

    try:
        result = operating_points(load_sweep(sweep_dir), min_accuracy)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="SWEEP_DIR") from err
    path = Path(sweep_dir) / "pareto.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result, indent=2) + "\n")
    click.echo(format_operating_points(result))
    click.echo(f"wrote {path}")
