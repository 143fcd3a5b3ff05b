"""``neuralfuse sweep`` and ``pareto``: measure a base model and generators over voltages, then
find the lowest-energy operating points."""
from __future__ import annotations

from pathlib import Path

import click

from neuralfuse.cli.inputs import chips_and_images, load_base
from neuralfuse.cli.options import (CRITERION_HELP, base_option, batch_size_option, bits_option,
                                    chips_option, data_options, device_option, fault_model_option,
                                    first_chip_option, generator_run_option, layout_option,
                                    output_option, parse_bers, parse_criterion, parse_voltages,
                                    precision_option, progress_option, ray_options, ray_resources,
                                    samples_option, tech_option)
from neuralfuse.runs import absolute, command_line
from sramsim.layouts import DEFAULT_LAYOUT


@click.command("sweep", epilog="Example: neuralfuse sweep --base base.pt --generator-run runs/unets "
               "--voltages 0.78:1.00:0.02 --chips 10 -o sweep-unets")
@base_option()
@generator_run_option("Training run directory of a generator (from `neuralfuse train`); repeat for "
                      "several. Each is named after its directory.", dest="generator_dirs", multiple=True)
@click.option("--voltages", callback=parse_voltages,
              help="Supply voltages in units of Vmin: START:STOP:STEP (both ends included) or a "
              "comma-separated list. Give this or --bers.")
@click.option("--bers", callback=parse_bers,
              help="Bit-error rates instead (the paper's axis), same syntax, e.g. 0.01,0.02,0.05: "
              "faults at exactly these BERs, each at its voltage by the technology.")
@chips_option()
@first_chip_option
@click.option("--on", "on", type=click.Choice(["test", "validation", "calibration"]), default="test",
              show_default=True, help="test: test images on evaluation chips. validation: the base "
              "model's held-out training images on validation chips (for choices). calibration: those "
              "held-out images on the evaluation chips, for per-chip voltage (`pareto --per-chip-from`).")
@fault_model_option()
@tech_option()
@bits_option()
@data_options()
@samples_option
@batch_size_option(500)
@layout_option(DEFAULT_LAYOUT)
@output_option("Sweep folder: new, empty, or holding this same sweep (then it resumes, or "
               "measures only the generators added).", folder=True)
@progress_option
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

    resources = ray_resources(ray_address, cpus_per_task, gpus_per_task)
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
    base, meta = load_base(base_path, "--base")
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
    chip_seeds, images = chips_and_images(on, chips, first_chip, meta, dataset, data_root, image_size, samples)
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


@click.command("pareto", epilog="Example: neuralfuse pareto sweep-unets --min-accuracy 80 --criterion "
               "quantile:0.1 --per-chip-from sweep-unets-calibration")
@click.argument("sweep_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--min-accuracy", type=click.FloatRange(0, 100), required=True,
              help="Lowest acceptable perturbed accuracy, in percent.")
@click.option("--criterion", default="mean", show_default=True, callback=parse_criterion,
              help=CRITERION_HELP)
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
