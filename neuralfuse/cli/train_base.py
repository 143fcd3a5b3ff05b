"""``neuralfuse train-base``: train a base model with quantization-aware training."""
from __future__ import annotations

import click

from neuralfuse.cli.inputs import check_image_size, usage_errors
from neuralfuse.cli.options import (batch_size_option, data_options, device_option, memory_options,
                                    output_option, precision_option, progress_option)
from neuralfuse.models.norm import NORMS
from sramsim.cli_types import BER, SEED


@click.command("train-base", epilog="Example: neuralfuse train-base --model resnet18 --width 0.25 "
               "--dataset cifar10 --data-root ~/data/cifar10 --epochs 30 -o resnet18-w025.pt")
@click.option("--model", default="resnet18", show_default=True,
              help="Base architecture: resnet18, resnet50, vgg11, vgg16 or vgg19.")
@click.option("--width", type=click.FloatRange(0, min_open=True), default=0.25, show_default=True,
              help="Channel width multiplier (1.0 = the paper's network).")
@data_options()
@click.option("--epochs", type=click.IntRange(1), default=30, show_default=True)
@batch_size_option(128)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=0.1, show_default=True,
              help="Peak learning rate at batch size 128 (scaled linearly with the batch size).")
@click.option("--weight-decay", type=click.FloatRange(0), default=5e-4, show_default=True)
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True)
@memory_options()
@click.option("--norm", type=click.Choice(NORMS), default=NORMS[0], show_default=True,
              help="Normalization layers: batch (BatchNorm) or group (GroupNorm, scale 1 + a').")
@click.option("--clip", type=click.FloatRange(0, min_open=True), default=None,
              help="Clamp every stored (conv/linear) weight to [-CLIP, CLIP] after each step, e.g. 0.1.")
@click.option("--randbet-ber", type=BER, default=None,
              help="Random bit-error training at this bit-error rate, on fresh training chips.")
@click.option("--randbet-threshold", type=click.FloatRange(0), default=1.75, show_default=True,
              help="Bit-error training is on for a batch only while its clean loss is below this.")
@click.option("--randbet-grad-clip", type=click.FloatRange(0, min_open=True), default=0.05,
              show_default=True, help="Element-wise bound of the bit-error training gradients.")
@click.option("--init-base", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Start from this base model's weights (fine-tuning, e.g. bit-error training of a "
              "clipped model) instead of a random initialization; same --model, --width and --norm.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--val-size", type=click.IntRange(0), default=0, show_default=True,
              help="Training images held out for per-epoch validation (e.g. 5000 of CIFAR's 50,000); "
              "generators trained on this model later use the same split.")
@click.option("--split-seed", type=SEED, default=0, show_default=True,
              help="Seed of the train/validation split.")
@click.option("--limit-batches", type=click.IntRange(1), default=None,
              help="Train on at most N batches per epoch (quick smoke runs).")
@output_option("Checkpoint to write; the resumable state lives in OUTPUT.partial meanwhile.")
@click.option("--compact", is_flag=True,
              help="Save the weights as 8-bit integers and scales (a quarter of the size; loads bit-identical).")
@progress_option
@device_option
@precision_option
def train_base_command(output: str, progress: bool, device, compact: bool, bits: int | None,
                       storage: str | None, tech: str | None, fault_model: str | None, layout: str | None,
                       **options) -> None:
    """Train a base model with quantization-aware training (8-bit weights by default).

    Rerunning an interrupted command resumes it exactly from OUTPUT.partial. Per-epoch metrics go
    to OUTPUT's stem + .metrics.csv. The memory options (--bits, --storage, ...) say how the weights
    are stored: --bits is the QAT's bit width, and bit-error training deploys the weights as they
    say; the checkpoint records them for the generators and evaluations of this model.
    """
    from neuralfuse.evaluation import inherited_memory
    from neuralfuse.train_base import BaseTrainer, TrainBaseConfig

    check_image_size(options["dataset"], options["image_size"])
    memory = usage_errors(inherited_memory, {}, bits=bits, storage=storage, tech=tech,
                          fault_model=fault_model, layout=layout)
    try:
        trainer = BaseTrainer(TrainBaseConfig(memory=memory, **options), output, progress=progress,
                              device=device, compact=compact)
    except (ValueError, OSError) as err:
        raise click.UsageError(str(err)) from err
    meta = trainer.run()
    click.echo(f"saved {output}: {meta['arch']} width {meta['width']:g}, "
               f"clean test accuracy {meta['test_acc']:.2%} after {meta['epoch']} epochs")
