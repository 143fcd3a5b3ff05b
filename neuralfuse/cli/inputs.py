"""Loading a command's inputs (checkpoints, data, operating points, memory configs, chips and
fault maps), turning the library's errors into click's one-line usage errors that name the option
at fault."""
from __future__ import annotations

import click


def load_base(path: str, hint: str):
    """(model, metadata) of the base-model checkpoint at ``path``, or a click error naming ``hint``."""
    from neuralfuse.checkpoint import load_base_model

    try:
        return load_base_model(path)
    except (OSError, ValueError) as err:
        raise click.BadParameter(str(err), param_hint=hint) from err


def check_image_size(dataset: str, image_size: int | None, hint: str = "--image-size") -> None:
    """Refuse a 'folder' dataset without its image size, naming the option that gives it."""
    if dataset == "folder" and image_size is None:
        raise click.BadParameter("a 'folder' dataset needs the side of its square images in pixels, "
                                 "e.g. 32", param_hint=hint)


def load_data(name: str, root: str | None, split: str, image_size: int | None = None,
              image_size_hint: str = "--image-size"):
    """The ``split`` of dataset ``name`` (in ``root``), or a click error."""
    from neuralfuse.data import load_dataset

    check_image_size(name, image_size, image_size_hint)
    try:
        return load_dataset(name, root, split=split, image_size=image_size)
    except (OSError, ValueError) as err:
        raise click.BadParameter(str(err), param_hint="--dataset/--data-root") from err


def operating_point(voltage: float | None, ber: float | None, tech: str):
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


def usage_errors(function, *args, **kwargs):
    """``function(*args, **kwargs)`` of the library, its ValueError or OSError as click's one-line
    usage error (e.g. :func:`neuralfuse.evaluation.plan_evaluation` or
    :func:`~neuralfuse.evaluation.inherited_memory`)."""
    try:
        return function(*args, **kwargs)
    except (OSError, ValueError) as err:
        raise click.UsageError(str(err)) from err


def load_fault_maps(paths: tuple[str, ...]):
    """The fault maps of ``--fault-map`` files (None for none), or a click error naming the file."""
    from sramsim.faults import load_fault_map

    try:
        return [load_fault_map(path) for path in paths] or None
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--fault-map") from err
