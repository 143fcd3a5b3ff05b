"""The ``sramsim`` command line: a thin click layer over the library."""
from __future__ import annotations

import os

import click

import characterization
from sramsim.array import ArrayGeometry
from sramsim.cli_types import BER, SEED, VOLTAGE, WEIGHT_BITS, OutputPath, RenamingGroup
from sramsim.faults import DEFAULT_FAULT_MODEL, FAULT_MODEL_SEMANTICS, FAULT_MODELS, Chip

RENAMED = {"--weight-bits": "--bits", "--seed": "--chip"}
"""Former spellings of options (old -> current), still read with a deprecation notice."""


@click.group(cls=RenamingGroup, renamed=RENAMED, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lowvolt-neuralfuse")
def main() -> None:
    """SRAM low-voltage simulation: voltage curves, fault maps, weight-memory accesses, energy."""


@main.command(epilog="""\b
Example:
  sramsim curves --tech 14nm-512x64 --points 7 --csv curves.csv --plot curves.png""")
@click.option("--tech", default=characterization.DEFAULT_TECH, show_default=True,
              help="Technology name (see the error for the list) or path to a technology CSV.")
@click.option("--csv", "csv_path", type=OutputPath(),
              help="Also write the table to this CSV file.")
@click.option("--plot", "plot_path", type=OutputPath(),
              help="Also draw the curves and measured points to this image (e.g. .png).")
@click.option("--points", type=click.IntRange(min=2), default=13, show_default=True,
              help="Number of voltages, evenly spaced over the technology's range.")
def curves(tech: str, csv_path: str | None, plot_path: str | None, points: int) -> None:
    """Print a technology's fitted curves: V/Vmin -> bit-error rate -> energy per access."""
    from characterization.atomic import atomic_path
    from characterization.plot import check_image_path, save_curves_plot

    try:
        model = characterization.load(tech)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--tech") from None
    if plot_path is not None:
        try:
            check_image_path(plot_path)
        except ValueError as err:
            raise click.BadParameter(str(err), param_hint="--plot") from None

    table = model.curve(points)
    click.echo(repr(model))
    click.echo(table.to_string(index=False, formatters={
        "v_over_vmin": "{:.4f}".format, "ber": "{:.3e}".format, "energy": "{:.4f}".format}))
    if csv_path is not None:
        with atomic_path(csv_path) as tmp:
            table.to_csv(tmp, index=False, float_format="%.12g")
        click.echo(f"wrote {csv_path}")
    if plot_path is not None:
        save_curves_plot(model, plot_path)
        click.echo(f"wrote {plot_path}")


@main.command(epilog="""\b
Example (the faults of 32 arrays of chip 3 at 0.83 Vmin, then of arrays 1000..1031):
  sramsim faultmap --voltage 0.83 --chip 3 --arrays 32 -o chip3.npz
  sramsim faultmap --voltage 0.83 --chip 3 --arrays 32 --start 32768000 -o chip3-1000.npz
\b
The .npz file holds cell_index (int64, sorted flat indices of faulty cells; cell c is in array
c // (rows*cols), row (c // cols) % rows, column c % cols), stuck_value (uint8), quantile
(float64: the cell is faulty at every BER above it), start, n_cells, rows, cols, arrays, ber,
voltage (NaN if given by --ber), seed, tech, fault_model and fault_model_semantics.
\b
A map too large for the available memory is generated --chunk-arrays arrays at a time and
streamed to the file (with a progress bar); one too large for the free disk is refused.""")
@click.option("--voltage", type=VOLTAGE, help="Supply voltage in units of Vmin (within the tech's range).")
@click.option("--ber", type=BER, help="Bit-error rate instead of a voltage: fraction of faulty cells.")
@click.option("--chip", "seed", required=True, type=SEED,
              help="Chip seed (neuralfuse's evaluation chip N is seed N).")
@click.option("--arrays", type=click.IntRange(min=1), help="Number of whole arrays' worth of cells.")
@click.option("--cells", "n_cells_option", type=click.IntRange(min=1), help="Number of bit cells.")
@click.option("--start", type=click.IntRange(min=0), default=0, show_default=True,
              help="First cell (flat index; array a starts at cell a*rows*cols).")
@click.option("--fault-model", type=click.Choice(FAULT_MODELS), default=DEFAULT_FAULT_MODEL, show_default=True,
              help="stuck-at: a faulty cell holds a random fixed value (the paper's); flip: it inverts.")
@click.option("--tech", default=characterization.DEFAULT_TECH, show_default=True,
              help="Technology name or path to a technology CSV.")
@click.option("--rows", type=click.IntRange(min=1), default=512, show_default=True, help="Rows per array.")
@click.option("--cols", type=click.IntRange(min=1), default=64, show_default=True, help="Bit columns per array.")
@click.option("--chunk-arrays", type=click.IntRange(min=1), default=None,
              help="Stream the map, generating this many arrays at a time [default: stream only a "
              "map too large for the available memory, in chunks of a quarter of it].")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar while streaming [default: on a terminal].")
@click.option("-o", "--output", required=True, type=OutputPath(),
              help="Output .npz file (written atomically).")
def faultmap(voltage: float | None, ber: float | None, seed: int, arrays: int | None,
             n_cells_option: int | None, start: int, fault_model: str, tech: str, rows: int,
             cols: int, chunk_arrays: int | None, progress: bool | None, output: str) -> None:
    """Generate the fault map of a region of a chip at a voltage or a bit-error rate and save it."""
    from sramsim.mapfile import MapSize, available_memory, free_disk, human_bytes, stream_fault_map

    if (voltage is None) == (ber is None):
        raise click.UsageError("give exactly one of --voltage or --ber")
    if (arrays is None) == (n_cells_option is None):
        raise click.UsageError("give exactly one of --arrays or --cells")
    try:
        geometry = ArrayGeometry(rows, cols)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--rows/--cols") from None
    try:
        characterization.load(tech)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--tech") from None
    folder = os.path.dirname(os.path.abspath(output))
    chip = Chip(seed, tech, geometry)
    n_cells = n_cells_option if n_cells_option is not None else arrays * geometry.cells
    if start + n_cells > 2**63:
        raise click.BadParameter(f"cells {start:,} .. {start + n_cells:,} go past the last cell "
                                 f"index 2**63 - 1", param_hint="--start/--arrays/--cells")
    try:
        rate = chip.ber(voltage=voltage, ber=ber)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--voltage") from None
    size, memory, disk = MapSize.estimate(n_cells, rate), available_memory(), free_disk(folder)
    stream = chunk_arrays is not None or size.memory_bytes > memory // 2
    if size.file_bytes * (2 if stream else 1) > disk:
        raise click.UsageError(
            f"a fault map of {n_cells:,} cells at BER {rate:.4g} (up to {size.faulty:,} faulty cells) "
            f"needs {human_bytes(size.file_bytes)} of disk{' (twice that while streaming)' if stream else ''} "
            f"and {human_bytes(size.memory_bytes)} of memory at once (less in chunks); available: "
            f"{human_bytes(memory)} of memory, {human_bytes(disk)} of disk in {folder}")
    if stream:
        if chunk_arrays is None:  # a chunk's map takes at most a quarter of the available memory
            chunk_arrays = max(1, int(memory // 4 / MapSize.estimate(geometry.cells, rate).memory_bytes))
        faulty = stream_fault_map(output, chip, n_cells, voltage=voltage, ber=ber, start=start,
                                  fault_model=fault_model, chunk_arrays=chunk_arrays, progress=progress)
    else:
        fault_map = chip.fault_map(n_cells, voltage=voltage, ber=ber, start=start)
        fault_map.save(output, fault_model)
        faulty = len(fault_map)
    at = f"V/Vmin {voltage:g} -> BER {rate:.4g}" if voltage is not None else f"BER {rate:.4g}"
    click.echo(f"chip {seed} of {tech}, {at}, fault model {fault_model}: {FAULT_MODEL_SEMANTICS[fault_model]}")
    per_array = geometry.cells
    click.echo(f"cells: {n_cells} from cell {start} in arrays {start // per_array}.."
               f"{(start + n_cells - 1) // per_array} of {rows}x{cols}"
               + (f", streamed in chunks of {chunk_arrays} arrays" if stream else ""))
    click.echo(f"faulty cells: {faulty} ({faulty / n_cells:.4g} of the cells)")
    click.echo(f"wrote {output}")


def _dims_option(n_dims: int | None, form: str):
    """A click callback parsing "AxBxC" into a tuple of positive ints (``n_dims`` of them if given)."""
    def parse(ctx: click.Context, param: click.Parameter, text: str) -> tuple[int, ...]:
        parts = text.lower().split("x")
        if (n_dims is not None and len(parts) != n_dims) or not all(p.isdigit() and int(p) > 0
                                                                    for p in parts):
            raise click.BadParameter(f"{text!r} is not of the form {form} (positive integers "
                                     "joined by 'x')")
        return tuple(int(p) for p in parts)
    return parse


def _network_option(ctx: click.Context, param: click.Parameter, name: str | None) -> str | None:
    from sramsim.accounting import network_kind
    from sramsim.registry import UnknownNetworkError

    if name is not None:
        try:
            network_kind(name)
        except UnknownNetworkError as err:
            raise click.BadParameter(str(err)) from None
    return name


def _accelerator_options(command):
    """The options shared by ``accesses`` and ``energy``: network, input and accelerator."""
    from sramsim.accounting import CONVENTIONS, DATAFLOWS, ENGINES

    options = [
        click.option("--model", required=True, callback=_network_option,
                     help="Registered network name (a model or a generator; see the error for the list)."),
        click.option("--input", "input_shape", default="3x32x32", show_default=True,
                     callback=_dims_option(None, "CxHxW"), help="One input's shape."),
        click.option("--array", default="32x32", show_default=True,
                     callback=_dims_option(2, "ROWSxCOLS"), help="Systolic array rows x columns."),
        click.option("--dataflow", type=click.Choice(DATAFLOWS), default="os", show_default=True,
                     help="Output-, weight- or input-stationary."),
        click.option("--filter-sram-kb", type=click.IntRange(min=1), default=256, show_default=True,
                     help="Filter SRAM size (does not change the read count)."),
        click.option("--row-bits", type=click.IntRange(min=1), default=64, show_default=True,
                     help="Bits per weight-SRAM row."),
        click.option("--bits", "weight_bits", type=WEIGHT_BITS, default=8, show_default=True,
                     help="Bits per stored weight."),
        click.option("--engine", type=click.Choice(ENGINES), default="analytic", show_default=True,
                     help="Closed form, or the scalesim package run in-process (cached)."),
        click.option("--convention", type=click.Choice(CONVENTIONS), default="paper",
                     show_default=True, help="Topology rules: the paper's, or physically exact."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _systolic_config(array: tuple[int, int], dataflow: str, filter_sram_kb: int, row_bits: int,
                     weight_bits: int):
    from sramsim.accounting import SystolicConfig

    try:
        return SystolicConfig(array_rows=array[0], array_cols=array[1], dataflow=dataflow,
                              filter_sram_kb=filter_sram_kb, row_bits=row_bits,
                              weight_bits=weight_bits)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--row-bits/--bits") from None


@main.command(epilog="""\b
Example (the paper's Table 6 count for ResNet18, and a per-layer CSV):
  sramsim accesses --model resnet18 --csv resnet18-accesses.csv""")
@_accelerator_options
@click.option("--csv", "csv_path", type=OutputPath(),
              help="Also write the per-layer table to this CSV file (atomically).")
def accesses(model: str, input_shape: tuple[int, ...], array: tuple[int, int], dataflow: str,
             filter_sram_kb: int, row_bits: int, weight_bits: int, engine: str, convention: str,
             csv_path: str | None) -> None:
    """Count a network's weight-SRAM reads per layer on a systolic accelerator (SCALE-SIM)."""
    from characterization.atomic import atomic_path
    from sramsim.accounting import weight_accesses

    config = _systolic_config(array, dataflow, filter_sram_kb, row_bits, weight_bits)
    try:
        table = weight_accesses(model, input_shape, config, engine=engine, convention=convention)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--input") from None
    shown = ["layer", "kind", "in_shape", "out_shape", "ifmap_h", "ofmap_h", "macs",
             "filter_reads", "row_accesses"]
    click.echo(table[shown].to_string(index=False, formatters={"row_accesses": "{:,.1f}".format}))
    click.echo(f"total over {len(table)} layers: MACs {table.macs.sum():,}, SCALE-SIM filter reads "
               f"{table.filter_reads.sum():,}, row accesses (T.W.M.A., {config.words_per_row} "
               f"weights per {row_bits}-bit row) {table.row_accesses.sum():,.1f}")
    if csv_path is not None:
        with atomic_path(csv_path) as tmp:
            table.to_csv(tmp, index=False)
        click.echo(f"wrote {csv_path}")


@main.command(epilog="""\b
Example (Table 2: ResNet18 behind ConvL at the voltage of 1% bit-error rate):
  sramsim energy --model resnet18 --generator ConvL --ber 0.01""")
@_accelerator_options
@click.option("--generator", callback=_network_option,
              help="Registered generator run at the nominal voltage in front of the model.")
@click.option("--voltage", type=VOLTAGE, help="The model's supply voltage, in units of Vmin.")
@click.option("--ber", type=BER, help="Bit-error rate instead of a voltage.")
@click.option("--nominal-voltage", type=VOLTAGE, default=1.0, show_default=True,
              help="The generator's (and the reference) voltage, in units of Vmin.")
@click.option("--tech", default=characterization.DEFAULT_TECH, show_default=True,
              help="Technology name or path to a technology CSV.")
def energy(model: str, input_shape: tuple[int, ...], array: tuple[int, int], dataflow: str,
           filter_sram_kb: int, row_bits: int, weight_bits: int, engine: str, convention: str,
           generator: str | None, voltage: float | None, ber: float | None,
           nominal_voltage: float, tech: str) -> None:
    """Weight-memory energy of a model at a low voltage and the saving of Eq. 6 (accesses) and
    Eq. 7 (MACs) with an optional generator at the nominal voltage."""
    from sramsim.accounting import energy_report, load_technology
    from sramsim.operating_point import check_voltage_or_ber

    try:
        check_voltage_or_ber(voltage, ber, ("--voltage", "--ber"))
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    config = _systolic_config(array, dataflow, filter_sram_kb, row_bits, weight_bits)
    try:
        vmodel = load_technology(tech)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--tech") from None
    try:
        vmodel.energy_per_access(nominal_voltage)
        if voltage is not None:
            vmodel.energy_per_access(voltage)
        else:
            vmodel.voltage_at_ber(ber)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--voltage/--ber/--nominal-voltage") from None
    try:
        r = energy_report(model, generator, voltage, ber=ber, input_shape=input_shape,
                          nominal_voltage=nominal_voltage, tech=vmodel, config=config,
                          engine=engine, convention=convention)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--input") from None
    click.echo(f"{r['technology']}: V/Vmin {r['voltage']:.4f} (BER {r['ber']:.3g}), nominal "
               f"{r['nominal_voltage']:g}, energy per access {r['energy_ratio']:.4f} of nominal")
    click.echo(f"{model}: {r['base_accesses']:,.1f} row accesses, {r['base_macs']:,} MACs; "
               f"energy {r['base_energy_nominal']:,.1f} at nominal, {r['base_energy_low']:,.1f} low")
    if generator is not None:
        click.echo(f"{generator}: {r['generator_accesses']:,.1f} row accesses, "
                   f"{r['generator_macs']:,} MACs; energy {r['generator_energy_nominal']:,.1f} "
                   "at nominal")
    click.echo(f"energy saving: {100 * r['saving_accesses']:.2f}% (Eq. 6, accesses), "
               f"{100 * r['saving_macs']:.2f}% (Eq. 7, MACs)")
