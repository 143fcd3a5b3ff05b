"""The options the ``neuralfuse`` commands share, each declared once here.

Each name is a decorator (or a function returning one, where commands differ in the default or the
help). Values that need the library are parsed in callbacks that import it on use.
"""
from __future__ import annotations

import importlib

import click

from characterization import DEFAULT_TECH
from neuralfuse.precision import DEFAULT_PRECISION, PRECISION_HELP, PRECISIONS
from sramsim.cli_types import BER, TECH, VOLTAGE, WEIGHT_BITS, OutputPath
from sramsim.faults import DEFAULT_FAULT_MODEL, FAULT_MODELS
from sramsim.layouts import DEFAULT_LAYOUT, LAYOUTS
from sramsim.storage import DEFAULT_STORAGE, STORAGE_FORMATS


def _stacked(*options):
    """One decorator applying ``options`` so that they appear in the given order."""
    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command
    return decorate


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

progress_option = click.option("--progress/--no-progress", default=True, show_default=True,
                               help="Show progress bars.")


def output_option(help: str, *, folder: bool = False, dest: str = "output", **settings):
    """``-o/--output``: the file (or, with ``folder``, the folder) a command writes, checked before
    any work; required unless ``settings`` give a default."""
    settings.setdefault("required", "default" not in settings)
    return click.option("-o", "--output", dest, type=OutputPath(folder=folder), help=help, **settings)


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


def ray_resources(ray_address: str | None, cpus: float | None, gpus: float | None) -> dict:
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


# --- the model and the run ------------------------------------------------------------------

def base_option(help: str = "Base-model checkpoint (from `neuralfuse train-base`).", required: bool = True):
    """``--base``: a base-model checkpoint file."""
    return click.option("--base", "base_path", type=click.Path(exists=True, dir_okay=False),
                        required=required, default=None, help=help)


def run_option(help: str, *, dest: str = "run_dir", required: bool = False, multiple: bool = False):
    """``--run``: a training run directory (from `neuralfuse train`)."""
    return click.option("--run", dest, type=click.Path(exists=True, file_okay=False),
                        required=required, multiple=multiple, default=None, help=help)


# --- how the weights are stored and fail ----------------------------------------------------

def voltage_or_ber_options(voltage: str, ber: str):
    """``--voltage`` and ``--ber`` (the command takes exactly one), with these helps."""
    return _stacked(click.option("--voltage", type=VOLTAGE, default=None, help=voltage),
                    click.option("--ber", type=BER, default=None, help=ber))


def _inherited(value: object, inherited: str | None) -> str:
    """The ``[default: ...]`` of an option that takes, unless given, what ``inherited`` recorded."""
    return f" [default: {inherited}, else {value}]" if inherited else f" [default: {value}]"


def storage_option(inherited: str | None = None):
    """``--storage``: how a weight is stored (:mod:`sramsim.storage`); unset: ``inherited``'s."""
    return click.option(
        "--storage", type=click.Choice(STORAGE_FORMATS), default=None,
        help="How each weight is stored: symmetric (per-tensor two's complement) or robust (Stutz et "
        "al.: per-tensor range, unsigned codes, every read clamped back into the range)."
        + _inherited(DEFAULT_STORAGE, inherited))


def layout_option(inherited: str | None = None):
    """``--layout``: which weight bits a chip's faulty cells corrupt; unset: ``inherited``'s."""
    return click.option(
        "--layout", type=click.Choice(LAYOUTS), default=None,
        help="Fault layout: arrays (physical: every weight bit has its own cell) or neuralfuse-code "
        "(as the NeuralFuse authors' code places faults, under which the paper's numbers were "
        "measured: one 8192x128 map shared by all layers, repeating every 16 weights)."
        + _inherited(DEFAULT_LAYOUT, inherited))


def memory_options(inherited: str | None = None):
    """``--bits``, ``--storage``, ``--fault-model``, ``--tech`` and ``--layout``: how the weights are
    stored (:class:`sramsim.MemoryConfig`). Each is None unless given: the command then takes the
    value that ``inherited`` (e.g. "the generator's training") recorded, else the config's default
    (:func:`neuralfuse.evaluation.inherited_memory`)."""
    return _stacked(
        click.option("--bits", type=WEIGHT_BITS, default=None,
                     help="Weight bit width." + _inherited(8, inherited)),
        storage_option(inherited),
        click.option("--fault-model", type=click.Choice(FAULT_MODELS), default=None,
                     help="What a faulty cell does: stuck-at (the paper's) holds a random value, flip "
                     "inverts the bit." + _inherited(DEFAULT_FAULT_MODEL, inherited)),
        click.option("--tech", type=TECH, default=None, help="Technology name or characterization file."
                     + _inherited(DEFAULT_TECH, inherited)),
        layout_option(inherited))


# --- chips and images -----------------------------------------------------------------------

def chips_option(default: int | None = 10, help: str = "Number of evaluation chips (their own seed "
                 "stream, used in neither training nor validation)."):
    """``--chips``: how many evaluation chips."""
    return click.option("--chips", type=click.IntRange(1), default=default,
                        show_default=default is not None, help=help)


first_chip_option = click.option(
    "--first-chip", type=click.IntRange(0), default=0, show_default=True,
    help="First evaluation chip: chips FIRST..FIRST+CHIPS-1 (e.g. chips a generator was never "
    "compared on).")

fault_map_option = click.option(
    "--fault-map", "fault_map_paths", type=click.Path(exists=True, dir_okay=False), multiple=True,
    help="A measured chip instead of the simulated ones: a fault-map file as `sramsim faultmap` writes "
    "it (one file, one chip, named by its seed); repeat for several. It holds the chip's faults at its "
    "own rate and every lower one; a map that does not fit the model is refused before any work.")

samples_option = click.option("--samples", type=click.IntRange(1), default=None,
                              help="Evaluate on a fixed random subset of N images [default: all].")


def batch_size_option(default: int):
    """``--batch-size``."""
    return click.option("--batch-size", type=click.IntRange(1), default=default, show_default=True)


_DATA_ROOT_TYPE = click.Path(exists=True, file_okay=False)


def data_options(required: bool = False):
    """``--dataset`` (default 'default' unless ``required``), ``--data-root`` and ``--image-size``."""
    return _stacked(
        click.option("--dataset", required=required, default=None if required else "default",
                     show_default=not required,
                     help="Dataset name; 'default' is the small CIFAR-10 subset shipped with the package."),
        click.option("--data-root", type=_DATA_ROOT_TYPE, default=None,
                     help="Folder holding the dataset (not needed for 'default')."),
        click.option("--image-size", type=click.IntRange(1), default=None,
                     help="Side in pixels of the square images of a 'folder' dataset (needed "
                     "there; the other datasets have a fixed size)."))


training_data_options = _stacked(
    click.option("--dataset", default=None, help="Dataset name, test split [default: the "
                 "generator's training dataset, else 'default']."),
    click.option("--data-root", type=_DATA_ROOT_TYPE, default=None,
                 help="Folder holding the dataset [default: the generator's training data root]."),
    click.option("--image-size", type=click.IntRange(1), default=None,
                 help="Side in pixels of the square images of a 'folder' dataset [default: the "
                 "generator's training image size]."))
"""``--dataset``, ``--data-root``, ``--image-size`` defaulting to a generator's training data."""


# --- values parsed by the library -----------------------------------------------------------

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


parse_voltages = _parsed_by("tradeoff:parse_voltages")
parse_bers = _parsed_by("tradeoff:parse_bers")
parse_criterion = _parsed_by("criteria:parse_criterion")

CRITERION_HELP = ("Accuracy criterion: mean (the mean PA over chips), quantile:Q (the Q-quantile "
                  "chip, no interpolation: with 10 chips quantile:0.1 is the worst) or yield:Y (at "
                  "least a fraction Y of the chips at or above the floor).")
