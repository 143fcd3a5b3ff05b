"""``neuralfuse train``: train a NeuralFuse generator with EOPM."""
from __future__ import annotations

import click

from neuralfuse.cli.inputs import load_base, load_data, operating_point, usage_errors
from neuralfuse.cli.options import (base_option, batch_size_option, data_options, device_option,
                                    memory_options, output_option, precision_option, progress_option,
                                    voltage_or_ber_options)
from neuralfuse.runs import absolute, command_line
from sramsim.cli_types import SEED


@click.command("train", epilog="Example: neuralfuse train --base resnet18-w025.pt --generator UNetS "
               "--ber 0.01 --dataset default --epochs 5 --train-subset 2000 -o runs/unets")
@base_option("Base-model checkpoint (from `neuralfuse train-base`): the target model.")
@click.option("--generator", required=True,
              help="Generator architecture: ConvL, ConvS, DeConvL, DeConvS, UNetL, UNetS, or UIP "
              "(the universal-input-perturbation baseline).")
@voltage_or_ber_options(
    voltage="Training voltage in units of Vmin, e.g. 0.83 (turned into a BER by the technology's "
    "characterization). Give this or --ber.",
    ber="Training bit-error rate (fraction of faulty cells), e.g. 0.01.")
@memory_options("the base model's")
@click.option("--chips-per-step", "n_chips", type=click.IntRange(1), default=10, show_default=True,
              help="Perturbed models (fresh chips) per step.")
@click.option("--lambda", "lam", type=click.FloatRange(0), default=5.0, show_default=True,
              help="Weight of the perturbed loss.")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-3, show_default=True,
              help="Adam learning rate.")
@click.option("--lr-schedule", type=click.Choice(["constant", "cosine"]), default="constant",
              show_default=True, help="cosine: decay the learning rate to 0 over all --epochs "
              "(then --epochs is part of the run and cannot change on resume).")
@batch_size_option(25)
@click.option("--epochs", type=click.IntRange(1), default=150, show_default=True)
@click.option("--init-run", "init_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Fine-tune: start from the generator of this finished run (same architecture) "
              "instead of a fresh one.")
@click.option("--augment/--no-augment", default=False, show_default=True,
              help="Random crop (4-pixel padding) and, where the dataset allows, horizontal flips "
              "of the training images.")
@click.option("--seed", type=SEED, default=0, show_default=True,
              help="Seeds the generator's initialisation, the data order, the augmentation and the "
              "training chips.")
@click.option("--surrogate", "surrogate_paths", type=click.Path(exists=True, dir_okay=False),
              multiple=True, help="Restricted access: train through this white-box model instead "
              "of the base, which is then only run forward; repeat for an ensemble.")
@data_options(required=True)
@click.option("--train-subset", type=click.IntRange(1), default=None,
              help="Train on N samples of the training split [default: all].")
@click.option("--max-steps-per-epoch", type=click.IntRange(1), default=None,
              help="Stop every epoch after N steps [default: a full pass].")
@click.option("--val-size", type=click.IntRange(0), default=None,
              help="Training images held out, never trained on (0: none) [default: the base model's "
              "held-out split when it was trained on this dataset with one, else 500].")
@click.option("--split-seed", type=SEED, default=None,
              help="Seed of that split [default: the base model's, else 0].")
@click.option("--val-images", type=click.IntRange(1), default=None,
              help="Held-out images validated on after every epoch (a fixed subset) [default: all].")
@click.option("--val-chips", type=click.IntRange(1), default=3, show_default=True,
              help="Validation chips (their own seed stream) for the per-epoch validation PA.")
@click.option("--checkpoint-every", type=click.IntRange(1), default=100, show_default=True,
              help="Also checkpoint every N steps within an epoch.")
@click.option("--patience", type=click.IntRange(1), default=None,
              help="Stop once the validation PA has not improved for N epochs (the kept generator "
              "is still the best epoch) [default: run all --epochs].")
@output_option("Run directory: new, empty, or holding this same run (then it resumes).",
               folder=True, dest="run_dir")
@progress_option
@device_option
@precision_option
def train_command(base_path: str, surrogate_paths: tuple[str, ...], dataset: str, data_root: str | None,
                  image_size: int | None, run_dir: str, progress: bool, voltage: float | None,
                  init_dir: str | None, device, bits: int | None, storage: str | None, tech: str | None,
                  fault_model: str | None, layout: str | None, **options) -> None:
    """Train a NeuralFuse generator with EOPM (expectation over perturbed models).

    Writes RUN_DIR/config.json, checkpoint.pt (every epoch and every --checkpoint-every steps),
    metrics.csv, learning_curve.png, epochs/generator-epochNNN.pt (after each epoch) and, at the
    end, generator.pt: the epoch with the highest validation PA (validation images and chips
    only). Rerunning an interrupted command resumes it and ends with the same generator as an
    uninterrupted run; rerunning a finished one with more --epochs continues it. The base model's
    weights are stored as its checkpoint records (bits, storage, ...) unless an option says
    otherwise; the run records it, and `evaluate` and `sweep` take it from there.
    """
    from neuralfuse.checkpoint import load_generator
    from neuralfuse.eopm import TrainConfig, base_split, train
    from neuralfuse.evaluation import inherited_memory
    from neuralfuse.generators.registry import GENERATORS
    from neuralfuse.plots import write_learning_curve

    try:
        GENERATORS.info(options["generator"])
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--generator") from err
    base, meta = load_base(base_path, "--base")
    memory = usage_errors(inherited_memory, {base_path: meta}, bits=bits, storage=storage, tech=tech,
                          fault_model=fault_model, layout=layout)
    operating_point(voltage, options["ber"], memory.tech)
    surrogates = []
    for path in surrogate_paths:
        model, surrogate_meta = load_base(path, "--surrogate")
        if surrogate_meta["num_classes"] != meta["num_classes"]:
            raise click.BadParameter(f"{path!r} predicts {surrogate_meta['num_classes']} classes, the base "
                                     f"model {meta['num_classes']}", param_hint="--surrogate")
        surrogates.append(model)
    data = load_data(dataset, data_root, "train", image_size)
    if data.info.num_classes != meta["num_classes"]:
        raise click.BadParameter(f"{dataset!r} has {data.info.num_classes} classes but the base model "
                                 f"predicts {meta['num_classes']}", param_hint="--dataset")
    try:
        options.update(base_split(meta, dataset, val_size=options["val_size"],
                                  split_seed=options["split_seed"]))
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--val-size/--split-seed") from err
    init = None
    if init_dir is not None:
        try:
            init, init_meta = load_generator(init_dir)
        except (OSError, ValueError) as err:
            raise click.BadParameter(str(err), param_hint="--init-run") from err
        if init_meta["generator"].casefold() != options["generator"].casefold():
            raise click.BadParameter(f"{init_dir!r} holds a {init_meta['generator']} generator, not a "
                                     f"{options['generator']}", param_hint="--init-run")
    provenance = {"base": absolute(base_path), "surrogates": [absolute(p) for p in surrogate_paths],
                  "init_generator": absolute(init_dir), "dataset": dataset,
                  "data_root": absolute(data_root), "image_size": image_size,
                  "command": command_line()}
    try:
        config = TrainConfig(voltage=voltage, memory=memory, **options)
        path = train(run_dir, config, base, data, surrogates=surrogates, init=init,
                     provenance=provenance, progress=progress, device=device, on_epoch=write_learning_curve)
    except (OSError, ValueError) as err:
        raise click.UsageError(str(err)) from err
    click.echo(f"saved {path}")
