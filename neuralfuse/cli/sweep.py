"""``neuralfuse sweep`` and ``pareto``: measure a base model and generators over voltages, then
find the lowest-energy operating points."""
from __future__ import annotations

from pathlib import Path

import click

from neuralfuse.cli.inputs import check_image_size, load_base, load_fault_maps, usage_errors
from neuralfuse.cli.options import (CRITERION_HELP, base_option, batch_size_option, chips_option,
                                    data_options, device_option, fault_map_option, first_chip_option,
                                    run_option, memory_options, output_option, parse_bers,
                                    parse_criterion, parse_voltages, precision_option, progress_option,
                                    ray_options, ray_resources, samples_option)
from neuralfuse.runs import absolute, command_line


@click.command("sweep", epilog="Example: neuralfuse sweep --base base.pt --run runs/unets "
               "--voltages 0.78:1.00:0.02 --chips 10 -o sweep-unets")
@base_option()
@run_option("Training run directory of a generator (from `neuralfuse train`); repeat for "
                      "several. Each is named after its directory.", dest="generator_dirs", multiple=True)
@click.option("--voltages", callback=parse_voltages,
              help="Supply voltages in units of Vmin: START:STOP:STEP (both ends included) or a "
              "comma-separated list. Give this or --bers.")
@click.option("--bers", callback=parse_bers,
              help="Bit-error rates instead (the paper's axis), same syntax, e.g. 0.01,0.02,0.05: "
              "faults at exactly these BERs, each at its voltage by the technology.")
@chips_option(None, "Number of evaluation chips (their own seed stream, used in neither training nor "
              "validation) [default: 10].")
@first_chip_option
@fault_map_option
@click.option("--on", "on", type=click.Choice(["test", "validation", "calibration"]), default="test",
              show_default=True, help="test: test images on evaluation chips. validation: the base "
              "model's held-out training images on validation chips (for choices). calibration: those "
              "held-out images on the evaluation chips, for per-chip voltage (`pareto --per-chip-from`).")
@memory_options("the generators' training (without one: the base model's)")
@data_options()
@samples_option
@batch_size_option(500)
@output_option("Sweep folder: new, empty, or holding this same sweep (then it resumes, or "
               "measures only the generators added).", folder=True)
@progress_option
@device_option
@precision_option
@ray_options
def sweep_command(base_path: str, generator_dirs: tuple[str, ...], voltages: tuple[float, ...] | None,
                  bers: tuple[float, ...] | None, chips: int | None, first_chip: int,
                  fault_map_paths: tuple[str, ...], on: str, dataset: str, data_root: str | None,
                  image_size: int | None, samples: int | None, batch_size: int, output: str,
                  progress: bool, device, precision: str, ray_address: str | None,
                  cpus_per_task: float | None, gpus_per_task: float | None, **memory) -> None:
    """Measure a base model, alone and behind generators, at every voltage on every chip.

    Writes OUTPUT/sweep.csv (one row per configuration and voltage: BER, CA, PA mean ± std over
    chips, weight-memory accesses, energy relative to Vmin, energy saving by Eq. 6), chips.csv,
    sweep.json (arguments, seeds, versions) and the plots pareto, accuracy and curves (PNG, SVG).
    Finished points are kept: rerunning an interrupted command computes only what is missing,
    and rerunning it with more --run options measures only the new generators; a
    folder holding a sweep with other settings (voltages or BERs, chips, images, memory config) is
    refused. The weights are stored as the generators were trained (bits, storage, fault model,
    technology, layout; generators trained otherwise need the option that settles it), else as the
    base model records, unless an option says otherwise. With --fault-map the chips are measured
    ones; each map must hold the faults of the highest BER swept.

    With --ray, each chip (all its voltages, every configuration) is one Ray task writing the same
    point files; a sweep started locally can finish on Ray and the reverse. --device is where
    this process computes the generators' outputs and the clean accuracy; Ray tasks run on CUDA
    when given --gpus-per-task, else on their CPUs.
    """
    import characterization
    from neuralfuse.checkpoint import load_generator
    from neuralfuse.evaluation import evaluation_inputs, inherited_memory
    from neuralfuse.plots import write_sweep_plots
    from neuralfuse.tradeoff import BASE, sweep
    from sramsim.operating_point import check_voltage_or_ber

    resources = ray_resources(ray_address, cpus_per_task, gpus_per_task)
    try:
        check_voltage_or_ber(voltages, bers, ("--voltages", "--bers"))
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    base, meta = load_base(base_path, "--base")
    generators, trained = {}, {}
    for run_dir in generator_dirs:
        name = Path(run_dir).resolve().name
        if name in generators or name == BASE:
            raise click.BadParameter(f"two configurations would be named {name!r}: give the run "
                                     f"directories distinct names (not {BASE!r})", param_hint="--run")
        try:
            generators[name], trained[run_dir] = load_generator(run_dir, base=base)
        except (OSError, ValueError) as err:
            raise click.BadParameter(str(err), param_hint="--run") from err
    memory = usage_errors(inherited_memory, trained or {base_path: meta}, **memory)
    try:
        technology = characterization.load(memory.tech)
        if bers is None:
            technology.ber(list(voltages))
        else:
            technology.voltage_at_ber(list(bers))
    except ValueError as err:  # voltages outside the technology's range
        raise click.BadParameter(str(err), param_hint="--voltages/--bers/--tech") from err
    check_image_size(dataset, image_size)
    images, chip_list = usage_errors(evaluation_inputs, meta, on=on, chips=chips, first_chip=first_chip,
                                     fault_maps=load_fault_maps(fault_map_paths), dataset=dataset,
                                     data_root=data_root, image_size=image_size, samples=samples)
    provenance = {"base": absolute(base_path),
                  "generators": {name: absolute(d) for name, d in zip(generators, generator_dirs)},
                  "dataset": dataset, "data_root": absolute(data_root), "image_size": image_size, "samples": samples,
                  **({"fault_maps": [absolute(path) for path in fault_map_paths]} if fault_map_paths else {}),
                  "command": command_line()}
    runner = None
    if resources:
        from neuralfuse.distributed import ray_runner

        runner = ray_runner(**resources)
    try:
        table = sweep(base, images, voltages, bers=bers, generators=generators, chips=chip_list,
                      split="test" if on == "test" else "validation", memory=memory,
                      batch_size=batch_size, out_dir=output, provenance=provenance, progress=progress,
                      device=device, runner=runner, precision=precision)
    except (OSError, ValueError) as err:
        raise click.UsageError(str(err)) from err
    write_sweep_plots(table, output, memory.tech)
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
