"""``neuralfuse evaluate``, ``compare`` and ``show``: measure a generator, table the results, and
draw what it does to images."""
from __future__ import annotations

import click

from neuralfuse.cli.inputs import (check_image_size, load_base, load_data, load_fault_maps, operating_point,
                                   usage_errors)
from neuralfuse.cli.options import (base_option, batch_size_option, chips_option, device_option,
                                    fault_map_option, first_chip_option, run_option,
                                    memory_options, output_option, precision_option, progress_option,
                                    samples_option, training_data_options, voltage_or_ber_options)
from neuralfuse.runs import absolute, command_line
from sramsim.cli_types import OutputPath


@click.command("evaluate", epilog="Example: neuralfuse evaluate --base resnet18-w025.pt "
               "--run runs/unets --ber 0.01 --chips 10")
@base_option()
@run_option("Training run directory (from `neuralfuse train`) whose generator to put in front.")
@voltage_or_ber_options(voltage="Supply voltage in units of Vmin, e.g. 0.83. Give this or --ber "
                        "(with --fault-map: [default: the maps' own]).",
                        ber="Bit-error rate (fraction of faulty cells), e.g. 0.01.")
@chips_option(None, "Number of evaluation chips (their own seed stream, used in neither training nor "
              "validation) [default: 10].")
@first_chip_option
@fault_map_option
@click.option("--on", "on", type=click.Choice(["test", "validation"]), default="test", show_default=True,
              help="test: test images and evaluation chips, for the numbers you report. validation: the "
              "base model's held-out training images and validation chips, for every choice (operating "
              "point, epoch, λ).")
@memory_options("the generator's training (without one: the base model's)")
@training_data_options
@samples_option
@batch_size_option(500)
@click.option("--latency-repeats", type=click.IntRange(1), default=30, show_default=True,
              help="Batch-1 forward passes timed for the latency (their median is reported).")
@click.option("--allow-other-base", is_flag=True,
              help="Accept a generator trained for another base model (transfer studies).")
@click.option("--json", "json_path", type=OutputPath(), default=None,
              help="Write the results here [default: RUN_DIR/evaluation-<settings>.json with "
              "--run, named by every setting that changes the numbers; else nowhere].")
@click.option("--overwrite", is_flag=True,
              help="Replace a result file made with other settings (refused otherwise).")
@progress_option
@device_option
@precision_option
def evaluate_command(base_path: str, run_dir: str | None, voltage: float | None, ber: float | None,
                     chips: int | None, first_chip: int, fault_map_paths: tuple[str, ...], on: str,
                     dataset: str | None, data_root: str | None, image_size: int | None,
                     samples: int | None, batch_size: int, latency_repeats: int, allow_other_base: bool,
                     json_path: str | None, overwrite: bool, progress: bool, device, precision: str,
                     **memory) -> None:
    """Clean and perturbed accuracy of a base model, alone and behind a NeuralFuse generator.

    Prints CA, PA (mean ± std over the chips) with and without the generator, the recovery RP, the
    efficiency ratio (RP per million generator parameters) and the batch-1 latencies. The weights
    are stored as the generator was trained (bits, storage, fault model, technology, layout) unless
    an option says otherwise. With --fault-map the chips are measured ones, evaluated at the maps'
    own rate unless --voltage or --ber gives a lower one.
    """
    from characterization.atomic import write_json
    from neuralfuse.checkpoint import load_generator
    from neuralfuse.chips import map_point
    from neuralfuse.evaluation import evaluate, format_table, inherited_memory, plan_evaluation, settings_from_training
    from neuralfuse.result_files import evaluation_target

    base, meta = load_base(base_path, "--base")
    generator, trained = None, {}
    if run_dir is not None:
        try:
            generator, trained = load_generator(run_dir, base=None if allow_other_base else base)
        except (OSError, ValueError) as err:
            raise click.BadParameter(str(err), param_hint="--run") from err
    dataset, data_root, image_size = settings_from_training(
        trained, dataset=dataset, data_root=data_root, image_size=image_size).values()
    memory = usage_errors(inherited_memory, {run_dir: trained} if run_dir else {base_path: meta}, **memory)
    fault_maps = load_fault_maps(fault_map_paths)
    if fault_maps and voltage is None and ber is None:
        point = usage_errors(map_point, fault_maps)
    else:
        point = operating_point(voltage, ber, memory.tech)
    check_image_size(dataset, image_size)
    plan = usage_errors(plan_evaluation, meta, point=point, memory=memory, on=on, chips=chips,
                        first_chip=first_chip, fault_maps=fault_maps, dataset=dataset,
                        data_root=absolute(data_root), image_size=image_size, samples=samples,
                        precision=precision)
    json_path = usage_errors(evaluation_target, plan.settings, run_dir, json_path, overwrite)
    result = usage_errors(evaluate, base, plan.images, point=point, generator=generator,
                          generator_name=trained.get("generator"), chips=plan.chips, memory=memory,
                          batch_size=batch_size, latency_repeats=latency_repeats, progress=progress,
                          device=device, precision=precision)
    maps = {"fault_maps": [absolute(path) for path in fault_map_paths]} if fault_maps else {}
    result["provenance"] = plan.provenance(base=absolute(base_path), generator=absolute(run_dir),
                                           **maps, command=command_line())
    click.echo(format_table(result))
    if json_path is not None:
        write_json(json_path, result)
        click.echo(f"wrote {json_path}")


def _cell(value, digits: str) -> str:
    """A table cell: '-' for a missing value, a float formatted with ``digits`` (e.g. '.2f')."""
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return format(value, digits) if isinstance(value, float) else str(value)


@click.command("compare", epilog="Example: neuralfuse compare runs/unets-s0 runs/unets-s1 runs/convs-s0 "
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
    (bits, storage, fault model, layout, chips, first chip, samples, split, dataset).
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


@click.command("show", epilog="Example: neuralfuse show --run runs/unets -o unets.png")
@run_option("Training run directory (from `neuralfuse train`) whose generator to show.", required=True)
@base_option("Base-model checkpoint the generator must have been trained for [default: the run's "
             "recorded base model, when that file exists].", required=False)
@training_data_options
@click.option("--per-class", type=click.IntRange(1), default=2, show_default=True,
              help="Images of each class (the first ones of the test split).")
@click.option("--amplification", type=click.FloatRange(0, min_open=True), default=None,
              help="Factor on |F(x) - x| [default: the one that shows the 99th percentile of the "
              "differences at full brightness]; the figure says which.")
@output_option("Image to write, e.g. show.png.")
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
        raise click.BadParameter(str(err), param_hint="--run") from err
    base = None if base_path is None else load_base(base_path, "--base")[0]
    try:
        generator, trained = load_generator(run_dir, base=base)
    except (OSError, ValueError) as err:
        raise click.BadParameter(str(err), param_hint="--run/--base") from err
    settings = settings_from_training(trained, dataset=dataset, data_root=data_root, image_size=image_size)
    images = load_data(settings["dataset"], settings["data_root"], "test", settings["image_size"])
    x, labels = class_examples(images, per_class)
    figure = transformation_figure(generator, x, labels, images.info.classes, amplification,
                                   name=trained.get("generator"))
    save_transformation_figure(figure, output)
    click.echo(f"wrote {output}: {len(x)} test images of {settings['dataset']!r}"
               f"{'' if base_path is None else f', generator checked against {base_path}'}")
