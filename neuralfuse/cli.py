"""The ``neuralfuse`` command line: a thin click layer over the library."""
from __future__ import annotations

import importlib
from pathlib import Path

import click

from characterization import DEFAULT_TECH
from neuralfuse.models.norm import NORMS
from neuralfuse.precision import DEFAULT_PRECISION, PRECISION_HELP, PRECISIONS
from neuralfuse.runs import absolute, command_line
from neuralfuse.shipped import DEFAULT_SETUP as DEFAULT_DEMO_SETUP, SETUPS as DEMO_SETUPS
from sramsim.cli_types import BER, SEED, WEIGHT_BITS, OutputPath
from sramsim.faults import DEFAULT_FAULT_MODEL, FAULT_MODELS
from sramsim.layouts import DEFAULT_LAYOUT, LAYOUTS
from sramsim.storage import STORAGE_FORMATS


def _layout_option(default: str | None, default_help: str = ""):
    """The ``--layout`` option: which weight bits a chip's faulty cells corrupt."""
    return click.option(
        "--layout", type=click.Choice(LAYOUTS), default=default, show_default=default is not None,
        help="Fault layout: arrays (physical: every weight bit has its own cell) or neuralfuse-code "
        "(as the NeuralFuse authors' code places faults, under which the paper's numbers were "
        "measured: one 8192x128 map shared by all layers, repeating every 16 weights)." + default_help)


def _parse_device(ctx: click.Context, param: click.Parameter, value: str):
    """``--device`` callback: the torch device named auto, cpu, cuda or cuda:N."""
    from neuralfuse.devices import resolve_device

    try:
        return resolve_device(value)
    except ValueError as err:
        raise click.BadParameter(str(err), ctx, param) from err


device_option = click.option(
    "--device", default="auto", show_default=True, callback=_parse_device,
    help="Where to run: auto (CUDA when available, else CPU), cpu, cuda or cuda:N.")

precision_option = click.option(
    "--precision", type=click.Choice(PRECISIONS), default=DEFAULT_PRECISION, show_default=True,
    help=PRECISION_HELP)


def ray_options(command):
    """``--ray [ADDRESS]``, ``--cpus-per-task`` and ``--gpus-per-task`` (for neuralfuse.distributed)."""
    command = click.option(
        "--gpus-per-task", type=click.FloatRange(0), default=None,
        help="GPUs per Ray task (fractions allowed, e.g. 0.25) [default: 0]; tasks with GPUs run on CUDA.")(command)
    command = click.option(
        "--cpus-per-task", type=click.FloatRange(0, min_open=True), default=None,
        help="CPUs per Ray task (fractions allowed) [default: 1]; also the task's torch/numba threads.")(command)
    return click.option(
        "--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
        help="Run on Ray: the cluster at ADDRESS (e.g. auto, ray://head:10001), or a new local Ray "
        "instance without one (then give --ray last). Needs the [ray] extra.")(command)


def _ray_resources(ray_address: str | None, cpus: float | None, gpus: float | None) -> dict:
    """Keyword arguments for neuralfuse.distributed from the Ray options, or a click error."""
    if ray_address is None:
        if cpus is not None or gpus is not None:
            raise click.UsageError("--cpus-per-task and --gpus-per-task need --ray")
        return {}
    try:
        import ray  # noqa: F401  (only checks that the extra is installed)
    except ImportError as err:
        raise click.UsageError("--ray needs Ray: pip install 'lowvolt-neuralfuse[ray]'") from err
    return {"address": ray_address, "cpus_per_task": 1.0 if cpus is None else cpus,
            "gpus_per_task": 0.0 if gpus is None else gpus}


def _image_size_option(command):
    """``--image-size``, for the commands that take ``--dataset``."""
    return click.option("--image-size", type=click.IntRange(1), default=None,
                        help="Side in pixels of the square images of a 'folder' dataset (needed "
                        "there; the other datasets have a fixed size).")(command)


def _parsed_by(parser: str):
    """An option callback that parses the value (each value of a repeatable option) with
    ``parser`` ("module:function" in neuralfuse, imported on use); None stays None and a
    ValueError becomes click's one-line usage error."""
    def callback(ctx: click.Context, param: click.Parameter, value):
        if value is None:
            return None
        module, function = parser.split(":")
        parse = getattr(importlib.import_module(f"neuralfuse.{module}"), function)
        try:
            return tuple(map(parse, value)) if isinstance(value, tuple) else parse(value)
        except ValueError as err:
            raise click.BadParameter(str(err), ctx, param) from err
    return callback


def _training_data_options(command):
    """``--dataset``, ``--data-root``, ``--image-size`` defaulting to a generator's training data."""
    options = [
        click.option("--dataset", default=None, help="Dataset name, test split [default: the "
                     "generator's training dataset, else 'default']."),
        click.option("--data-root", type=click.Path(exists=True, file_okay=False), default=None,
                     help="Folder holding the dataset [default: the generator's training data root]."),
        click.option("--image-size", type=click.IntRange(1), default=None,
                     help="Side in pixels of the square images of a 'folder' dataset [default: the "
                     "generator's training image size]."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


_parse_voltages = _parsed_by("tradeoff:parse_voltages")
_parse_bers = _parsed_by("tradeoff:parse_bers")
_parse_criterion = _parsed_by("criteria:parse_criterion")


_CRITERION_HELP = ("Accuracy criterion: mean (the mean PA over chips), quantile:Q (the Q-quantile "
                   "chip, no interpolation: with 10 chips quantile:0.1 is the worst) or yield:Y (at "
                   "least a fraction Y of the chips at or above the floor).")

first_chip_option = click.option(
    "--first-chip", type=click.IntRange(0), default=0, show_default=True,
    help="First evaluation chip: chips FIRST..FIRST+CHIPS-1 (e.g. chips a generator was never "
    "compared on).")


def _chips_and_images(on: str, chips: int, first_chip: int, meta: dict, dataset: str,
                      data_root: str | None, image_size: int | None, samples: int | None):
    """(chip seeds, images) that ``--on`` names: test images on evaluation chips FIRST..;
    validation: the base model's held-out images on validation chips; calibration: those images on
    evaluation chips FIRST.. (a chip calibrating its own voltage). A click error otherwise."""
    from neuralfuse.chips import evaluation_chips, validation_chips
    from neuralfuse.data import base_validation_set, fixed_subset

    if on == "validation" and first_chip:
        raise click.UsageError("--first-chip picks evaluation chips: leave it out with --on validation")
    try:
        seeds = validation_chips(chips) if on == "validation" else evaluation_chips(chips, first=first_chip)
        if on == "test":
            images = _load_data(dataset, data_root, "test", image_size)
        else:
            images = base_validation_set(_load_data(dataset, data_root, "train", image_size), meta)
        return seeds, fixed_subset(images, samples)
    except ValueError as err:
        raise click.UsageError(str(err)) from err


def _operating_point(voltage: float | None, ber: float | None, tech: str):
    """The ``OperatingPoint`` of ``--voltage`` or ``--ber`` (exactly one), or a click error."""
    from sramsim.operating_point import OperatingPoint, check_voltage_or_ber

    try:
        check_voltage_or_ber(voltage, ber, ("--voltage", "--ber"))
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    try:
        return OperatingPoint.resolve(voltage=voltage, ber=ber, tech=tech)
    except ValueError as err:  # unknown technology, or a voltage outside its characterized range
        raise click.BadParameter(str(err), param_hint="--voltage/--tech") from err


def _load_base(path: str, hint: str):
    """(model, metadata) of the base-model checkpoint at ``path``, or a click error naming ``hint``."""
    from neuralfuse.checkpoint import load_base_model

    try:
        return load_base_model(path)
    except (OSError, ValueError) as err:
        raise click.BadParameter(str(err), param_hint=hint) from err


def _check_image_size(dataset: str, image_size: int | None, hint: str = "--image-size") -> None:
    """Refuse a 'folder' dataset without its image size, naming the option that gives it."""
    if dataset == "folder" and image_size is None:
        raise click.BadParameter("a 'folder' dataset needs the side of its square images in pixels, "
                                 "e.g. 32", param_hint=hint)


def _load_data(name: str, root: str | None, split: str, image_size: int | None = None,
               image_size_hint: str = "--image-size"):
    from neuralfuse.data import load_dataset

    _check_image_size(name, image_size, image_size_hint)
    try:
        return load_dataset(name, root, split=split, image_size=image_size)
    except (OSError, ValueError) as err:
        raise click.BadParameter(str(err), param_hint="--dataset/--data-root") from err


def _cell(value, digits: str) -> str:
    """A table cell: '-' for a missing value, a float formatted with ``digits`` (e.g. '.2f')."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return format(value, digits) if isinstance(value, float) else str(value)


class _PipelineOrder(click.Group):
    """A group that lists its commands in the order they are defined: the pipeline's order."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=_PipelineOrder, context_settings={"help_option_names": ["-h", "--help"]})
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
@_image_size_option
@click.option("--epochs", type=click.IntRange(1), default=30, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=128, show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=0.1, show_default=True,
              help="Peak learning rate at batch size 128 (scaled linearly with the batch size).")
@click.option("--weight-decay", type=click.FloatRange(0), default=5e-4, show_default=True)
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), default=0.0,
              show_default=True)
@click.option("--bits", type=WEIGHT_BITS, default=8, show_default=True,
              help="Weight bit width of the quantization-aware training.")
@click.option("--norm", type=click.Choice(NORMS), default=NORMS[0], show_default=True,
              help="Normalization layers: batch (BatchNorm) or group (GroupNorm, scale 1 + a').")
@click.option("--clip", type=click.FloatRange(0, min_open=True), default=None,
              help="Clamp every stored (conv/linear) weight to [-CLIP, CLIP] after each step, e.g. 0.1.")
@click.option("--randbet-ber", type=click.FloatRange(0, 0.5, min_open=True), default=None,
              help="Random bit-error training at this bit-error rate, on fresh training chips.")
@click.option("--randbet-threshold", type=click.FloatRange(0), default=1.75, show_default=True,
              help="Bit-error training is on for a batch only while its clean loss is below this.")
@click.option("--randbet-grad-clip", type=click.FloatRange(0, min_open=True), default=0.05,
              show_default=True, help="Element-wise bound of the bit-error training gradients.")
@click.option("--storage", type=click.Choice(STORAGE_FORMATS), default=STORAGE_FORMATS[0], show_default=True,
              help="How the weights of bit-error training are stored (sramsim).")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--val-size", type=click.IntRange(0), default=0, show_default=True,
              help="Training images held out for per-epoch validation (e.g. 5000 of CIFAR's 50,000); "
              "generators trained on this model later use the same split.")
@click.option("--split-seed", type=SEED, default=0, show_default=True,
              help="Seed of the train/validation split.")
@click.option("--limit-batches", type=click.IntRange(1), default=None,
              help="Train on at most N batches per epoch (quick smoke runs).")
@click.option("-o", "--output", type=OutputPath(), required=True,
              help="Checkpoint to write; the resumable state lives in OUTPUT.partial meanwhile.")
@click.option("--compact", is_flag=True,
              help="Save the weights as 8-bit integers and scales (a quarter of the size; loads bit-identical).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
@device_option
@precision_option
def train_base_command(output: str, progress: bool, device, compact: bool, **options) -> None:
    """Train a base model with quantization-aware training (8-bit weights by default).

    Rerunning an interrupted command resumes it exactly from OUTPUT.partial. Per-epoch metrics go
    to OUTPUT's stem + .metrics.csv.
    """
    from neuralfuse.train_base import BaseTrainer, TrainBaseConfig

    _check_image_size(options["dataset"], options["image_size"])
    try:
        trainer = BaseTrainer(TrainBaseConfig(**options), output, progress=progress, device=device,
                              compact=compact)
    except (ValueError, OSError) as err:
        raise click.UsageError(str(err)) from err
    meta = trainer.run()
    click.echo(f"saved {output}: {meta['arch']} width {meta['width']:g}, "
               f"clean test accuracy {meta['test_acc']:.2%} after {meta['epoch']} epochs")


@main.command("train", epilog="Example: neuralfuse train --base resnet18-w025.pt --generator UNetS "
              "--ber 0.01 --dataset default --epochs 5 --train-subset 2000 -o runs/unets")
@click.option("--base", "base_path", type=click.Path(exists=True, dir_okay=False), required=True,
              help="Base-model checkpoint (from `neuralfuse train-base`): the target model.")
@click.option("--generator", required=True,
              help="Generator architecture: ConvL, ConvS, DeConvL, DeConvS, UNetL, UNetS, or UIP "
              "(the universal-input-perturbation baseline).")
@click.option("--voltage", type=click.FloatRange(0, min_open=True), default=None,
              help="Training voltage in units of Vmin, e.g. 0.83 (turned into a BER by the "
              "technology's characterization). Give this or --ber.")
@click.option("--ber", type=BER, default=None,
              help="Training bit-error rate (fraction of faulty cells), e.g. 0.01.")
@click.option("--fault-model", type=click.Choice(FAULT_MODELS), default=DEFAULT_FAULT_MODEL,
              show_default=True, help="stuck-at reproduces the paper; flip inverts every faulty bit.")
@click.option("--tech", default=DEFAULT_TECH, show_default=True,
              help="Technology name or characterization file.")
@click.option("--bits", type=WEIGHT_BITS, default=None,
              help="Weight bit width [default: the checkpoint's, else 8].")
@_layout_option(DEFAULT_LAYOUT)
@click.option("--n-chips", type=click.IntRange(1), default=10, show_default=True,
              help="Perturbed models (fresh chips) per step.")
@click.option("--lambda", "lam", type=click.FloatRange(0), default=5.0, show_default=True,
              help="Weight of the perturbed loss.")
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=1e-3, show_default=True,
              help="Adam learning rate.")
@click.option("--lr-schedule", type=click.Choice(["constant", "cosine"]), default="constant",
              show_default=True, help="cosine: decay the learning rate to 0 over all --epochs "
              "(then --epochs is part of the run and cannot change on resume).")
@click.option("--batch-size", type=click.IntRange(1), default=25, show_default=True)
@click.option("--epochs", type=click.IntRange(1), default=150, show_default=True)
@click.option("--init-generator", "init_dir", type=click.Path(exists=True, file_okay=False), default=None,
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
@click.option("--dataset", required=True,
              help="Dataset name; 'default' is the small CIFAR-10 subset shipped with the package.")
@click.option("--data-root", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder holding the dataset (not needed for 'default').")
@_image_size_option
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
@click.option("-o", "--output", "run_dir", type=OutputPath(folder=True), required=True,
              help="Run directory: new, empty, or holding this same run (then it resumes).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
@device_option
@precision_option
def train_command(base_path: str, surrogate_paths: tuple[str, ...], dataset: str, data_root: str | None,
                  image_size: int | None, run_dir: str, progress: bool, voltage: float | None,
                  bits: int | None, init_dir: str | None, device, **options) -> None:
    """Train a NeuralFuse generator with EOPM (expectation over perturbed models).

    Writes RUN_DIR/config.json, checkpoint.pt (every epoch and every --checkpoint-every steps),
    metrics.csv, learning_curve.png, epochs/generator-epochNNN.pt (after each epoch) and, at the
    end, generator.pt: the epoch with the highest validation PA (validation images and chips
    only). Rerunning an interrupted command resumes it and ends with the same generator as an
    uninterrupted run; rerunning a finished one with more --epochs continues it.
    """
    from neuralfuse.checkpoint import load_generator
    from neuralfuse.eopm import TrainConfig, base_split, train
    from neuralfuse.generators.registry import GENERATORS
    from neuralfuse.plots import write_learning_curve

    try:
        GENERATORS.info(options["generator"])
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--generator") from err
    _operating_point(voltage, options["ber"], options["tech"])
    base, meta = _load_base(base_path, "--base")
    surrogates = []
    for path in surrogate_paths:
        model, surrogate_meta = _load_base(path, "--surrogate")
        if surrogate_meta["num_classes"] != meta["num_classes"]:
            raise click.BadParameter(f"{path!r} predicts {surrogate_meta['num_classes']} classes, the base "
                                     f"model {meta['num_classes']}", param_hint="--surrogate")
        surrogates.append(model)
    data = _load_data(dataset, data_root, "train", image_size)
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
            raise click.BadParameter(str(err), param_hint="--init-generator") from err
        if init_meta["generator"].casefold() != options["generator"].casefold():
            raise click.BadParameter(f"{init_dir!r} holds a {init_meta['generator']} generator, not a "
                                     f"{options['generator']}", param_hint="--init-generator")
    provenance = {"base": absolute(base_path), "surrogates": [absolute(p) for p in surrogate_paths],
                  "init_generator": absolute(init_dir), "dataset": dataset,
                  "data_root": absolute(data_root), "image_size": image_size,
                  "command": command_line()}
    try:
        config = TrainConfig(voltage=voltage, bits=bits or meta.get("bits", 8), **options)
        path = train(run_dir, config, base, data, surrogates=surrogates, init=init,
                     provenance=provenance, progress=progress, device=device, on_epoch=write_learning_curve)
    except (OSError, ValueError) as err:
        raise click.UsageError(str(err)) from err
    click.echo(f"saved {path}")


@main.command("grid", epilog="Example: neuralfuse grid grid.toml -o grid-out --cpus-per-task 4 --ray auto")
@click.argument("spec_path", metavar="SPEC.toml", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=OutputPath(folder=True), required=True,
              help="Grid folder: new, empty, or holding this same grid (then it resumes).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress bars.")
@device_option
@ray_options
def grid_command(spec_path: str, output: str, progress: bool, device, ray_address: str | None,
                 cpus_per_task: float | None, gpus_per_task: float | None) -> None:
    """Train and evaluate many EOPM runs from one spec: the cartesian product of its [grid] axes.

    SPEC.toml names the base model and data, the settings all runs share ([train]), the axes
    ([grid]: generator, ber or voltage, lam, seed, any train option) and the evaluation
    ([evaluate]: chips, samples). Each run is a resumable run directory OUTPUT/runs/NAME, evaluated
    at its training point when it finishes; OUTPUT/compare.csv tables them (as `neuralfuse
    compare OUTPUT/runs/*`). Without --ray the runs go one after another here; with --ray each run
    is one Ray task, retried from its last checkpoint if its worker dies.
    """
    from neuralfuse.grid import GridSpecError, load_spec, run_grid

    resources = _ray_resources(ray_address, cpus_per_task, gpus_per_task)
    try:
        spec = load_spec(spec_path)
        if not spec.base.is_file():
            raise GridSpecError(f"base model {str(spec.base)!r} (from {spec_path!r}) does not exist")
        _load_data(spec.dataset, None if spec.data_root is None else str(spec.data_root), "test",
                   spec.image_size, image_size_hint=f"image_size in {spec_path}")
        table = run_grid(spec, output, device=str(device), ray=resources or None, progress=progress)
    except (OSError, ValueError) as err:
        raise click.UsageError(str(err)) from err
    shown = table[["label", "generator", "point", "ca", "pa_mean", "nf_ca", "nf_pa_mean", "nf_pa_std", "rp"]]
    click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    click.echo(f"wrote {len(table)} runs to {Path(output) / 'runs'} and the table to {Path(output) / 'compare.csv'}")



@main.command("evaluate", epilog="Example: neuralfuse evaluate --base resnet18-w025.pt "
              "--generator-run runs/unets --ber 0.01 --chips 10")
@click.option("--base", "base_path", type=click.Path(exists=True, dir_okay=False), required=True,
              help="Base-model checkpoint (from `neuralfuse train-base`).")
@click.option("--generator-run", "run_dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Training run directory (from `neuralfuse train`) whose generator to put in front.")
@click.option("--voltage", type=click.FloatRange(0, min_open=True), default=None,
              help="Supply voltage in units of Vmin, e.g. 0.83. Give this or --ber.")
@click.option("--ber", type=BER, default=None,
              help="Bit-error rate (fraction of faulty cells), e.g. 0.01.")
@click.option("--chips", type=click.IntRange(1), default=10, show_default=True,
              help="Number of evaluation chips (their own seed stream, used in neither training nor "
              "validation).")
@first_chip_option
@click.option("--on", "on", type=click.Choice(["test", "validation"]), default="test", show_default=True,
              help="test: test images and evaluation chips, for the numbers you report. validation: the "
              "base model's held-out training images and validation chips, for every choice (operating "
              "point, epoch, λ).")
@click.option("--bits", type=WEIGHT_BITS, default=None,
              help="Weight bit width [default: the checkpoint's, else 8].")
@click.option("--fault-model", type=click.Choice(FAULT_MODELS), default=None,
              help="[default: the generator's training fault model, else stuck-at]")
@_layout_option(None, " [default: the generator's training layout, else arrays]")
@click.option("--tech", default=None,
              help="Technology name or characterization file [default: the generator's, else 14nm-512x64].")
@_training_data_options
@click.option("--samples", type=click.IntRange(1), default=None,
              help="Evaluate on a fixed random subset of N images [default: all].")
@click.option("--batch-size", type=click.IntRange(1), default=500, show_default=True)
@click.option("--latency-repeats", type=click.IntRange(1), default=30, show_default=True,
              help="Batch-1 forward passes timed for the latency (their median is reported).")
@click.option("--allow-other-base", is_flag=True,
              help="Accept a generator trained for another base model (transfer studies).")
@click.option("--json", "json_path", type=OutputPath(), default=None,
              help="Write the results here [default: RUN_DIR/evaluation-<settings>.json with "
              "--generator-run, named by every setting that changes the numbers; else nowhere].")
@click.option("--overwrite", is_flag=True,
              help="Replace a result file made with other settings (refused otherwise).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@device_option
@precision_option
def evaluate_command(base_path: str, run_dir: str | None, voltage: float | None, ber: float | None,
                     chips: int, first_chip: int, on: str, bits: int | None, fault_model: str | None,
                     layout: str | None, tech: str | None, dataset: str | None, data_root: str | None,
                     image_size: int | None, samples: int | None, batch_size: int, latency_repeats: int,
                     allow_other_base: bool, json_path: str | None, overwrite: bool, progress: bool,
                     device, precision: str) -> None:
    """Clean and perturbed accuracy of a base model, alone and behind a NeuralFuse generator.

    Prints CA, PA (mean ± std over the chips) with and without the generator, the recovery RP, the
    efficiency ratio (RP per million generator parameters) and the batch-1 latencies.
    """
    from characterization.atomic import write_json
    from neuralfuse.checkpoint import load_generator
    from neuralfuse.evaluation import evaluate, format_table, settings_from_training
    from neuralfuse.result_files import evaluation_settings, evaluation_target

    base, meta = _load_base(base_path, "--base")
    generator, trained = None, {}
    if run_dir is not None:
        try:
            generator, trained = load_generator(run_dir, base=None if allow_other_base else base)
        except (OSError, ValueError) as err:
            raise click.BadParameter(str(err), param_hint="--generator-run") from err
    tech, fault_model, dataset, data_root, layout, image_size = settings_from_training(
        trained, tech=tech, fault_model=fault_model, dataset=dataset, data_root=data_root,
        layout=layout, image_size=image_size).values()
    point = _operating_point(voltage, ber, tech)
    bits = bits or meta.get("bits", 8)
    chip_seeds, images = _chips_and_images(on, chips, first_chip, meta, dataset, data_root, image_size, samples)
    try:
        settings = evaluation_settings(point=point, bits=bits, fault_model=fault_model, layout=layout,
                                       chips=chip_seeds, samples=len(images), split=on, dataset=dataset,
                                       image_size=image_size, precision=precision)
        json_path = evaluation_target(settings, run_dir, json_path, overwrite)
        result = evaluate(base, images, point=point, generator=generator,
                          generator_name=trained.get("generator"), chips=chip_seeds, bits=bits,
                          fault_model=fault_model, layout=layout, batch_size=batch_size,
                          latency_repeats=latency_repeats, progress=progress, device=device,
                          precision=precision)
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    result["provenance"] = {"base": absolute(base_path), "generator": absolute(run_dir),
                            "dataset": dataset, "data_root": absolute(data_root),
                            "image_size": image_size, "split": on,
                            "command": command_line()}
    click.echo(format_table(result))
    if json_path is not None:
        write_json(json_path, result)
        click.echo(f"wrote {json_path}")


@main.command("compare", epilog="Example: neuralfuse compare runs/unets-s0 runs/unets-s1 runs/convs-s0 "
              "--over-seeds --csv seeds.csv")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--over-seeds", is_flag=True,
              help="One row per training recipe: the runs that differ only in their seed, with the "
                   "mean, spread (sample std) and range over the seeds of CA, PA and RP.")
@click.option("--csv", "csv_path", type=OutputPath(), default=None,
              help="Also write the table here as CSV.")
def compare_command(paths: tuple[str, ...], over_seeds: bool, csv_path: str | None) -> None:
    """Put evaluation results side by side: CA, PA ± std, RP and efficiency per generator and point.

    PATHS are JSON files written by `neuralfuse evaluate` or training run directories (all their
    evaluation-*.json files are read). Rows are labelled "RUN_DIR SETTINGS" for the files a run
    directory holds, else by file name; the table shows every setting in which the rows differ
    (bits, fault model, layout, chips, first chip, samples, split, dataset).
    """
    import pandas as pd

    from characterization.atomic import atomic_path
    from neuralfuse.evaluation import EVALUATION_COLUMNS, comparison_table, load_evaluations, seed_summary

    try:
        results = load_evaluations(paths)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="PATHS") from err
    table = comparison_table(results)
    if over_seeds:
        table = seed_summary(table)

        def cells(column: str, digits: str = ".2f") -> list[str]:
            return [_cell(v, digits) for v in table[column]]

        def spread(column: str, digits: str = ".2f") -> list[str]:
            return [f"{m} ± {sd}" for m, sd in zip(cells(column, digits), cells(f"{column}_sd"))]

        shown = pd.DataFrame({
            "generator": table["generator"], "point": table["point"], "seeds": table["seeds"],
            "CA": cells("ca"), "NF CA": spread("nf_ca"), "CA drop": cells("ca_drop"),
            "PA": cells("pa_mean"), "NF PA": spread("nf_pa_mean"),
            "RP (min-max)": [f"{rp} ({lo} to {hi})" for rp, lo, hi in
                             zip(spread("rp", "+.2f"), cells("rp_min", "+.2f"), cells("rp_max", "+.2f"))],
            "runs": table["runs"]})
    else:
        constant = [c for c in EVALUATION_COLUMNS[2:] if table[c].nunique(dropna=False) == 1]
        shown = table.drop(columns=[*constant, "seed", "recipe"]).rename(columns={"parameters_m": "params (M)"})
        for column in shown:
            digits = ".3g" if column == "params (M)" else ".2f"
            shown[column] = [_cell(v, digits) for v in shown[column]]
    click.echo(shown.to_string(index=False))
    if csv_path is not None:
        with atomic_path(csv_path) as tmp:
            table.to_csv(tmp, index=False)
        click.echo(f"wrote {csv_path}")


@main.command("show", epilog="Example: neuralfuse show --generator-run runs/unets -o unets.png")
@click.option("--generator-run", "run_dir", type=click.Path(exists=True, file_okay=False), required=True,
              help="Training run directory (from `neuralfuse train`) whose generator to show.")
@click.option("--base", "base_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Base-model checkpoint the generator must have been trained for [default: the "
              "run's recorded base model, when that file exists].")
@_training_data_options
@click.option("--per-class", type=click.IntRange(1), default=2, show_default=True,
              help="Images of each class (the first ones of the test split).")
@click.option("--amplification", type=click.FloatRange(0, min_open=True), default=None,
              help="Factor on |F(x) - x| [default: the one that shows the 99th percentile of the "
              "differences at full brightness]; the figure says which.")
@click.option("-o", "--output", type=OutputPath(), required=True, help="Image to write, e.g. show.png.")
def show_command(run_dir: str, base_path: str | None, dataset: str | None, data_root: str | None,
                 image_size: int | None, per_class: int, amplification: float | None, output: str) -> None:
    """Draw what a generator does: clean x, F(x) and the amplified |F(x) - x| for a few test images
    of every class (as the paper's Figures 16-17)."""
    from characterization.plot import check_image_path
    from neuralfuse.checkpoint import load_generator, recorded_base
    from neuralfuse.evaluation import settings_from_training
    from neuralfuse.transformation_figure import (class_examples, save_transformation_figure,
                                                  transformation_figure)

    try:
        check_image_path(output)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--output") from err
    try:
        base_path = base_path or recorded_base(run_dir)
    except (OSError, ValueError) as err:
        raise click.BadParameter(str(err), param_hint="--generator-run") from err
    base = None if base_path is None else _load_base(base_path, "--base")[0]
    try:
        generator, trained = load_generator(run_dir, base=base)
    except (OSError, ValueError) as err:
        raise click.BadParameter(str(err), param_hint="--generator-run/--base") from err
    settings = settings_from_training(trained, dataset=dataset, data_root=data_root, image_size=image_size)
    images = _load_data(settings["dataset"], settings["data_root"], "test", settings["image_size"])
    x, labels = class_examples(images, per_class)
    figure = transformation_figure(generator, x, labels, images.info.classes, amplification,
                                   name=trained.get("generator"))
    save_transformation_figure(figure, output)
    click.echo(f"wrote {output}: {len(x)} test images of {settings['dataset']!r}"
               f"{'' if base_path is None else f', generator checked against {base_path}'}")


@main.command("sweep", epilog="Example: neuralfuse sweep --base base.pt --generator-run runs/unets "
              "--voltages 0.78:1.00:0.02 --chips 10 -o sweep-unets")
@click.option("--base", "base_path", type=click.Path(exists=True, dir_okay=False), required=True,
              help="Base-model checkpoint (from `neuralfuse train-base`).")
@click.option("--generator-run", "generator_dirs", type=click.Path(exists=True, file_okay=False),
              multiple=True, help="Training run directory of a generator (from `neuralfuse train`); "
              "repeat for several. Each is named after its directory.")
@click.option("--voltages", callback=_parse_voltages,
              help="Supply voltages in units of Vmin: START:STOP:STEP (both ends included) or a "
              "comma-separated list. Give this or --bers.")
@click.option("--bers", callback=_parse_bers,
              help="Bit-error rates instead (the paper's axis), same syntax, e.g. 0.01,0.02,0.05: "
              "faults at exactly these BERs, each at its voltage by the technology.")
@click.option("--chips", type=click.IntRange(1), default=10, show_default=True,
              help="Number of evaluation chips (their own seed stream, used in neither training nor "
              "validation).")
@first_chip_option
@click.option("--on", "on", type=click.Choice(["test", "validation", "calibration"]), default="test",
              show_default=True, help="test: test images on evaluation chips. validation: the base "
              "model's held-out training images on validation chips (for choices). calibration: those "
              "held-out images on the evaluation chips, for per-chip voltage (`pareto --per-chip-from`).")
@click.option("--fault-model", type=click.Choice(FAULT_MODELS), default=DEFAULT_FAULT_MODEL,
              show_default=True)
@click.option("--tech", default=DEFAULT_TECH, show_default=True,
              help="Technology name or characterization file.")
@click.option("--bits", type=WEIGHT_BITS, default=None,
              help="Weight bit width [default: the checkpoint's, else 8].")
@click.option("--dataset", default="default", show_default=True, help="Dataset name (test split).")
@click.option("--data-root", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder holding the dataset (not needed for 'default').")
@_image_size_option
@click.option("--samples", type=click.IntRange(1), default=None,
              help="Evaluate on a fixed random subset of N images [default: all].")
@click.option("--batch-size", type=click.IntRange(1), default=500, show_default=True)
@_layout_option(DEFAULT_LAYOUT)
@click.option("-o", "--output", type=OutputPath(folder=True), required=True,
              help="Sweep folder: new, empty, or holding this same sweep (then it resumes, or "
                   "measures only the generators added).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@device_option
@precision_option
@ray_options
def sweep_command(base_path: str, generator_dirs: tuple[str, ...], voltages: tuple[float, ...] | None,
                  bers: tuple[float, ...] | None, chips: int, first_chip: int, on: str,
                  fault_model: str, tech: str, bits: int | None, dataset: str,
                  data_root: str | None, image_size: int | None, samples: int | None, batch_size: int,
                  layout: str, output: str, progress: bool, device, precision: str,
                  ray_address: str | None, cpus_per_task: float | None, gpus_per_task: float | None) -> None:
    """Measure a base model, alone and behind generators, at every voltage on every chip.

    Writes OUTPUT/sweep.csv (one row per configuration and voltage: BER, CA, PA mean ± std over
    chips, weight-memory accesses, energy relative to Vmin, energy saving by Eq. 6), chips.csv,
    sweep.json (arguments, seeds, versions) and the plots pareto, accuracy and curves (PNG, SVG).
    Finished points are kept: rerunning an interrupted command computes only what is missing,
    and rerunning it with more --generator-run options measures only the new generators; a
    folder holding a sweep with other settings (voltages or BERs, chips, images) is refused.

    With --ray, each chip (all its voltages, every configuration) is one Ray task writing the same
    point files; a sweep started locally can finish on Ray and the reverse. --device is where
    this process computes the generators' outputs and the clean accuracy; Ray tasks run on CUDA
    when given --gpus-per-task, else on their CPUs.
    """
    import characterization
    from neuralfuse.checkpoint import load_generator
    from neuralfuse.plots import write_sweep_plots
    from neuralfuse.tradeoff import BASE, sweep
    from sramsim.operating_point import check_voltage_or_ber

    resources = _ray_resources(ray_address, cpus_per_task, gpus_per_task)
    try:
        check_voltage_or_ber(voltages, bers, ("--voltages", "--bers"))
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    try:
        technology = characterization.load(tech)
        if bers is None:
            technology.ber(list(voltages))
        else:
            technology.voltage_at_ber(list(bers))
    except ValueError as err:  # unknown technology, or voltages outside its range
        raise click.BadParameter(str(err), param_hint="--voltages/--bers/--tech") from err
    base, meta = _load_base(base_path, "--base")
    generators = {}
    for run_dir in generator_dirs:
        name = Path(run_dir).resolve().name
        if name in generators or name == BASE:
            raise click.BadParameter(f"two configurations would be named {name!r}: give the run "
                                     f"directories distinct names (not {BASE!r})", param_hint="--generator-run")
        try:
            generators[name] = load_generator(run_dir, base=base)[0]
        except (OSError, ValueError) as err:
            raise click.BadParameter(str(err), param_hint="--generator-run") from err
    chip_seeds, images = _chips_and_images(on, chips, first_chip, meta, dataset, data_root, image_size, samples)
    provenance = {"base": absolute(base_path),
                  "generators": {name: absolute(d) for name, d in zip(generators, generator_dirs)},
                  "dataset": dataset, "data_root": absolute(data_root), "image_size": image_size, "samples": samples,
                  "command": command_line()}
    runner = None
    if resources:
        from neuralfuse.distributed import ray_runner

        runner = ray_runner(**resources)
    try:
        table = sweep(base, images, voltages, bers=bers, generators=generators, chips=chip_seeds,
                      split="test" if on == "test" else "validation", tech=tech,
                      fault_model=fault_model, bits=bits or meta.get("bits", 8), layout=layout,
                      batch_size=batch_size, out_dir=output, provenance=provenance, progress=progress,
                      device=device, runner=runner, precision=precision)
    except (OSError, ValueError) as err:
        raise click.UsageError(str(err)) from err
    write_sweep_plots(table, output, tech)
    click.echo(f"wrote {len(table)} points to {Path(output) / 'sweep.csv'} and the plots to {output}")


@main.command("pareto", epilog="Example: neuralfuse pareto sweep-unets --min-accuracy 80 --criterion "
              "quantile:0.1 --per-chip-from sweep-unets-calibration")
@click.argument("sweep_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--min-accuracy", type=click.FloatRange(0, 100), required=True,
              help="Lowest acceptable perturbed accuracy, in percent.")
@click.option("--criterion", default="mean", show_default=True, callback=_parse_criterion,
              help=_CRITERION_HELP)
@click.option("--per-chip-from", "validation_dir", type=click.Path(exists=True, file_okay=False),
              default=None, help="Also per-chip voltage: each chip of SWEEP_DIR at its own lowest voltage "
              "that keeps MIN_ACCURACY on the validation images of this sweep (`neuralfuse sweep --on "
              "calibration`: same chips and voltages), scored on SWEEP_DIR's test images.")
def pareto_command(sweep_dir: str, min_accuracy: float, criterion, validation_dir: str | None) -> None:
    """The lowest-energy operating point per configuration that keeps MIN_ACCURACY under the criterion.

    Prints them and the best overall, and writes them to SWEEP_DIR/pareto.json (with the
    criterion). With --per-chip-from, also each chip at its own voltage: the mean energy saving
    over chips, the test PA, and how many chips keep the floor on test (a chip that keeps it on
    validation can miss it on test; one that keeps it at no voltage runs at the highest swept
    one); written to SWEEP_DIR/per-chip.csv and under "per_chip" in pareto.json.
    """
    from characterization.atomic import check_output_path, write_json
    from neuralfuse.per_chip_voltage import (format_per_chip, per_chip_from_sweeps, summarize_per_chip,
                                             write_per_chip)
    from neuralfuse.tradeoff import format_operating_points, load_chips, load_sweep, operating_points

    path = Path(sweep_dir) / "pareto.json"
    try:
        check_output_path(path)
        per_chip = None if criterion.name == "mean" else load_chips(sweep_dir)
        result = operating_points(load_sweep(sweep_dir), min_accuracy, criterion, per_chip)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="SWEEP_DIR") from err
    summary = None
    if validation_dir is not None:
        try:
            chips = per_chip_from_sweeps(validation_dir, sweep_dir, min_accuracy)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--per-chip-from") from err
        write_per_chip(chips, Path(sweep_dir) / "per-chip.csv")
        summary = summarize_per_chip(chips, criterion, min_accuracy)
        result["per_chip"] = {"validation_sweep": absolute(validation_dir),
                              "configs": summary.to_dict(orient="records")}
    write_json(path, result)
    click.echo(format_operating_points(result))
    if summary is not None:
        click.echo(format_per_chip(summary, min_accuracy))
    click.echo(f"wrote {path}")


@main.command("demo", epilog="Example: neuralfuse demo -o demo-output\n\n"
              "The small setup: neuralfuse demo --setup resnet18-w0.25 -o demo-small")
@click.option("-o", "--output", type=OutputPath(folder=True), default="neuralfuse-demo",
              show_default=True, help="Output folder: new, empty, or an unfinished demo (then it resumes).")
@click.option("--setup", type=click.Choice(list(DEMO_SETUPS)), default=DEFAULT_DEMO_SETUP, show_default=True,
              help="Shipped base model and generator: vgg11 (full width, the paper's regime: the "
              "generator costs ~3% of the model's weight reads) or resnet18-w0.25 (small and fast: 26%).")
@click.option("--voltages", callback=_parse_voltages, default=None,
              help="Voltages to sweep, in units of Vmin: START:STOP:STEP or a list [default: the "
              "setup's, 1.00 down to 0.78]; the generator's operating voltage is always added.")
@click.option("--chips", type=click.IntRange(1), default=None,
              help="Number of evaluation chips [default: the setup's, 10].")
@click.option("--samples", type=click.IntRange(1, 2000), default=None,
              help="Test images, a fixed random subset of the default test split's 2,000 "
              "[default: the setup's, 1000].")
@click.option("--min-accuracy", type=click.FloatRange(0, 100), default=None,
              help="Accuracy floor (PA, %) the summary leads with [default: the base model's "
              "clean accuracy minus 5 points].")
@click.option("--criterion", "criteria", multiple=True, callback=_parse_criterion,
              help=_CRITERION_HELP + " Repeat for a table per criterion (the first leads), e.g. "
              "--criterion mean --criterion quantile:0.1 --criterion yield:0.95 [default: mean].")
@_layout_option(DEFAULT_LAYOUT)
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show progress.")
@device_option
@precision_option
def demo_command(output: str, setup: str, voltages: tuple[float, ...] | None, chips: int | None,
                 samples: int | None, min_accuracy: float | None, criteria: tuple, layout: str,
                 progress: bool, device, precision: str) -> None:
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
                           progress=progress, device=device, precision=precision)
    except (OSError, ValueError) as err:
        raise click.UsageError(str(err)) from err
    click.echo("")
    click.echo(format_summary(summary))
    click.echo(f"\ndone: results are in {output}/")
