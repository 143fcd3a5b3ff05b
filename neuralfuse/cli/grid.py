"""``neuralfuse grid``: train and evaluate many EOPM runs from one TOML spec."""
from __future__ import annotations

from pathlib import Path

import click

from neuralfuse.cli.inputs import load_data
from neuralfuse.cli.options import device_option, output_option, progress_option, ray_options, ray_resources


@click.command("grid", epilog="Example: neuralfuse grid grid.toml -o grid-out --cpus-per-task 4 --ray auto")
@click.argument("spec_path", metavar="SPEC.toml", type=click.Path(exists=True, dir_okay=False))
@output_option("Grid folder: new, empty, or holding this same grid (then it resumes).", folder=True)
@progress_option
@device_option
@ray_options
def grid_command(spec_path: str, output: str, progress: bool, device, ray_address: str | None,
                 cpus_per_task: float | None, gpus_per_task: float | None) -> None:
    """Train and evaluate many EOPM runs from one spec: the cartesian product of its [grid] axes.

    SPEC.toml names the base model and data, the settings all runs share ([train]), the axes
    ([grid]: generator, ber or voltage, lambda, seed, any train option) and the evaluation
    ([evaluate]: chips, samples). Each run is a resumable run directory OUTPUT/runs/NAME, evaluated
    at its training point when it finishes; OUTPUT/compare.csv tables them (as `neuralfuse
    compare OUTPUT/runs/*`). Without --ray the runs go one after another here; with --ray each run
    is one Ray task, retried from its last checkpoint if its worker dies.
    """
    from neuralfuse.grid import GridSpecError, load_spec, run_grid

    resources = ray_resources(ray_address, cpus_per_task, gpus_per_task)
    try:
        spec = load_spec(spec_path)
        if not spec.base.is_file():
            raise GridSpecError(f"base model {str(spec.base)!r} (from {spec_path!r}) does not exist")
        load_data(spec.dataset, None if spec.data_root is None else str(spec.data_root), "test",
                  spec.image_size, image_size_hint=f"image_size in {spec_path}")
        table = run_grid(spec, output, device=str(device), ray=resources or None, progress=progress)
    except (OSError, ValueError) as err:
        raise click.UsageError(str(err)) from err
    shown = table[["label", "generator", "point", "ca", "pa_mean", "nf_ca", "nf_pa_mean", "nf_pa_std", "rp"]]
    click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    click.echo(f"wrote {len(table)} runs to {Path(output) / 'runs'} and the table to {Path(output) / 'compare.csv'}")
