"""characterization: shipped technologies, fitted models, file validation and `sramsim curves`."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import characterization
from characterization import OutOfRangeError, TechnologyFileError
from sramsim.cli import main as sramsim_main

GOOD_ROWS = ["v_over_vmin,ber,energy,source", "0.8,1e-2,0.7,a", "0.9,1e-4,,b", "1.0,1e-6,1.0,c"]


def write_csv(tmp_path, rows, header=("# a test technology",), name="tech.csv"):
    path = tmp_path / name
    path.write_text("\n".join([*header, *rows]) + "\n")
    return path


@pytest.fixture(scope="module")
def default():
    return characterization.load(characterization.DEFAULT_TECH)


#: The six measured 14nm rates (Chandramoorthy et al. HPCA 2019, as given in Stutz et al.'s MLSys 2021
#: talk) and how far the fitted curve may be from each: a factor 1.3, which also covers the
#: Poisson uncertainty of the 2-bit count at 0.958 (2 +- 1.4 bits).
MEASURED_14NM = {0.75: 0.2056, 0.792: 0.05573, 0.833: 0.01115, 0.875: 0.00129,
                 0.917: 72 / 2**20, 0.958: 2 / 2**20}
FIT_TOLERANCE = 1.3


def test_default_curve_passes_near_every_measured_point(default):
    for v, measured in MEASURED_14NM.items():
        assert 1 / FIT_TOLERANCE < default.ber(v) / measured < FIT_TOLERANCE, v
    assert default.ber(1.0) * 2**20 < 0.5  # under one faulty bit expected where none was seen
    assert default.mu == pytest.approx(0.7056, abs=5e-4) and default.sigma == pytest.approx(0.0552, abs=5e-4)
    for v in (0.75, 0.833, 0.958, 1.0):
        assert default.energy_per_access(v) == pytest.approx(v**2, rel=2e-3)
    assert default.v_range == (0.72, 1.0) and default.ber(0.72) < 0.5


def test_default_curve_agrees_with_the_other_published_14nm_numbers(default):
    # NeuralFuse: "1% BER at 0.83 Vmin" and an energy of 0.694 there (Tables 2 and 6), and the
    # largest of the seven rates in the authors' code comment, 1.2129%, which the curve puts at 0.830.
    assert default.voltage_at_ber(0.01) == pytest.approx(0.834, abs=1e-3)
    assert default.voltage_at_ber(0.012129) == pytest.approx(0.830, abs=1e-3)
    assert default.energy_per_access(0.833) == pytest.approx(0.694, abs=1e-3)


def test_the_two_point_calibration_still_gives_its_numbers():
    old = characterization.load("14nm-512x64-two-point")
    assert old.ber(0.83) == pytest.approx(1e-2, rel=1e-9)
    assert old.ber(1.0) == pytest.approx(1e-6, rel=1e-9)
    assert old.energy_per_access(0.83) == pytest.approx(0.694, rel=1e-9)
    assert (old.mu, old.sigma) == (pytest.approx(0.6666, abs=1e-3), pytest.approx(0.0699, abs=1e-3))
    assert old.voltage_at_ber(0.05) == pytest.approx(0.7823, abs=1e-4)
    assert old.v_range == (0.70, 1.0)


def test_fit_follows_the_data_file(tmp_path):
    path = write_csv(tmp_path, ["v_over_vmin,ber,energy,source", "0.83,1e-2,0.6,x", "1.0,1e-6,,y"])
    model = characterization.load(path)
    assert model.name == "tech"
    assert model.energy_per_access(0.83) == pytest.approx(0.6)
    assert model.ber(0.83) == pytest.approx(1e-2)


def test_voltage_at_ber_inverts_ber_across_the_range(default):
    v = np.linspace(*default.v_range, 301)
    np.testing.assert_allclose(default.voltage_at_ber(default.ber(v)), v, rtol=0, atol=1e-6)
    assert default.ber(default.voltage_at_ber(1e-2)) == pytest.approx(1e-2, rel=1e-9)


def test_curves_are_monotone(default):
    v = np.linspace(*default.v_range, 500)
    assert np.all(np.diff(default.ber(v)) < 0)
    assert np.all(np.diff(default.energy_per_access(v)) > 0)


def test_scalars_give_floats_and_arrays_give_arrays(default):
    assert type(default.ber(0.9)) is float
    assert type(default.voltage_at_ber(1e-3)) is float
    assert type(default.energy_per_access(np.float64(0.9))) is float
    grid = np.full((2, 3), 0.9)
    for result in (default.ber(grid), default.energy_per_access(grid), default.voltage_at_ber(grid / 100)):
        assert isinstance(result, np.ndarray) and result.shape == (2, 3)


@pytest.mark.parametrize("call", ["ber", "energy_per_access"])
def test_voltages_outside_the_range_raise_naming_value_and_range(default, call):
    with pytest.raises(OutOfRangeError, match=r"0\.6 .*\[0\.72, 1\].*bit-error rate instead"):
        getattr(default, call)([0.8, 0.6])
    with pytest.raises(OutOfRangeError, match="1.1"):
        getattr(default, call)(1.1)
    with pytest.raises(ValueError, match="must be in"):
        getattr(default, call)(-1.0)


def test_bers_outside_the_range_raise(default):
    lowest, highest = default.ber(1.0), default.ber(default.v_range[0])
    with pytest.raises(OutOfRangeError, match="1e-09"):
        default.voltage_at_ber(1e-9)
    with pytest.raises(OutOfRangeError):
        default.voltage_at_ber(highest * 1.1)
    assert default.voltage_at_ber([lowest, highest]) == pytest.approx([1.0, default.v_range[0]])
    for not_a_probability in (0.0, 1.0, np.nan):
        with pytest.raises(ValueError, match=r"BER must be in \(0, 1\)"):
            default.voltage_at_ber(not_a_probability)


def test_extrapolate_opts_in_beyond_the_range():
    model = characterization.load(characterization.DEFAULT_TECH, extrapolate=True)
    assert model.extrapolate and model.ber(0.6) > model.ber(0.7)
    assert model.voltage_at_ber(1e-9) > 1.0
    assert not characterization.load(characterization.DEFAULT_TECH).extrapolate


def test_repr_prints_the_configuration(default):
    text = repr(default)
    assert text.startswith("VoltageModel(name='14nm-512x64'")
    for part in ("v_range=(0.72, 1.0)", "mu=0.7056", "sigma=0.0552", "alpha=2.001", "extrapolate=False"):
        assert part in text


def test_points_and_source_are_exposed(default):
    assert list(default.points.columns) == ["v_over_vmin", "ber", "energy", "source"]
    assert default.points.v_over_vmin.tolist() == [*MEASURED_14NM, 1.0]
    assert "Chandramoorthy" in default.source and "v_range: 0.72 1.00" in default.source
    assert "Stutz" in default.source and "mu = 0.7056" in default.source
    default.points.loc[0, "ber"] = 0.5  # a caller's edit does not leak into later loads
    assert characterization.load(characterization.DEFAULT_TECH).points.ber[0] == 0.2056


@pytest.mark.parametrize("name", ["28nm-fpga-bram-kc705", "28nm-fpga-bram-vc707"])
def test_fpga_bram_curves_fit_a_gaussian_threshold(name):
    model = characterization.load(name)
    assert 0.05 <= model.sigma <= 0.07
    assert model.alpha == pytest.approx(2.0, abs=1e-3)  # the file's stated C*V^2 assumption
    measured = model.points.dropna(subset=["ber"])
    log_error = np.log10(model.ber(measured.v_over_vmin.to_numpy()) / measured.ber.to_numpy())
    assert np.abs(log_error).max() < 0.3


def test_list_technologies_names_every_shipped_file():
    names = characterization.list_technologies()
    assert characterization.DEFAULT_TECH in names
    assert {"28nm-fpga-bram-kc705", "28nm-fpga-bram-vc707"} <= set(names)


def test_unknown_technology_lists_known_ones():
    with pytest.raises(ValueError, match="14nm-512x64.*28nm-fpga-bram-kc705"):
        characterization.load("7nm-imaginary")


def test_a_blank_line_in_the_data_is_skipped_without_renumbering_rows(tmp_path):
    path = write_csv(tmp_path, ["v_over_vmin,ber,energy,source", "0.8,1e-2,0.7,a", "", "0.9,1e-1,,b"])
    with pytest.raises(TechnologyFileError, match=r"row 2 \(line 5\)"):
        characterization.load(path)


BAD_FILES = {
    "missing column": (["v_over_vmin,ber,source", "0.8,1e-2,a", "1.0,1e-6,b"], "missing column.*energy"),
    "not a number": ([*GOOD_ROWS[:2], "0.9,lots,,b", GOOD_ROWS[3]], r"row 2 .*ber is not a number"),
    "unsorted voltage": ([*GOOD_ROWS[:2], "0.75,1e-3,,b", GOOD_ROWS[3]], r"row 2 .*strictly increasing"),
    "repeated voltage": ([*GOOD_ROWS[:3], "0.9,1e-6,1.0,c"], r"row 3 .*strictly increasing"),
    "ber above 0.5": ([GOOD_ROWS[0], "0.8,0.6,0.7,a", *GOOD_ROWS[2:]], r"row 1 .*ber must be in"),
    "zero ber": ([*GOOD_ROWS[:3], "1.0,0,1.0,c"], r"row 3 .*upper bound"),
    "increasing ber": ([*GOOD_ROWS[:2], "0.9,2e-2,,b", GOOD_ROWS[3]], r"row 2 .*must not increase"),
    "negative energy": ([GOOD_ROWS[0], "0.8,1e-2,-0.7,a", *GOOD_ROWS[2:]], r"row 1 .*positive"),
    "decreasing energy": ([*GOOD_ROWS[:2], "0.9,1e-4,0.6,b", GOOD_ROWS[3]], r"row 2 .*not decrease"),
    "energy not 1 at Vmin": ([*GOOD_ROWS[:3], "1.0,1e-6,1.2,c"], r"row 3 .*1 at Vmin"),
    "missing source": ([*GOOD_ROWS[:2], "0.9,1e-4,,", GOOD_ROWS[3]], r"row 2 .*source is empty"),
    "empty row values": ([*GOOD_ROWS[:2], "0.9,,,b", GOOD_ROWS[3]], r"row 2 .*neither ber nor energy"),
    "one ber point": ([GOOD_ROWS[0], "0.8,1e-2,0.7,a", "1.0,,1.0,b"], "at least 2 ber points"),
    "no energy off Vmin": ([GOOD_ROWS[0], "0.8,1e-2,,a", "1.0,1e-6,1.0,b"], "at least 1 energy point"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_malformed_files_raise_naming_file_and_row(tmp_path, case):
    rows, message = BAD_FILES[case]
    path = write_csv(tmp_path, rows)
    with pytest.raises(TechnologyFileError, match=message) as caught:
        characterization.load(path)
    assert str(path.resolve()) in str(caught.value)


@pytest.mark.parametrize("line", ["# v_range: 0.9", "# v_range: 1.0 0.8", "# v_range: low high"])
def test_malformed_range_line_raises(tmp_path, line):
    with pytest.raises(TechnologyFileError, match="v_range"):
        characterization.load(write_csv(tmp_path, GOOD_ROWS, header=("# x", line)))


def test_points_outside_the_stated_range_raise(tmp_path):
    path = write_csv(tmp_path, GOOD_ROWS, header=("# v_range: 0.85 1.0",))
    with pytest.raises(TechnologyFileError, match=r"row 1 .*outside"):
        characterization.load(path)


def test_edited_file_is_refitted(tmp_path):
    path = write_csv(tmp_path, GOOD_ROWS)
    before = characterization.load(path).alpha
    write_csv(tmp_path, [GOOD_ROWS[0], "0.8,1e-2,0.5,a", *GOOD_ROWS[2:]])
    os.utime(path, ns=(0, 10**9))  # a different modification time, whatever the clock resolution
    assert characterization.load(path).alpha > before


def test_package_does_not_import_torch():
    code = "import characterization, characterization.plot, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- sramsim curves ---------------------------------------------------------------------------

def test_cli_curves_prints_table_and_writes_csv_and_plot(tmp_path):
    csv, png = tmp_path / "curves.csv", tmp_path / "curves.png"
    result = CliRunner().invoke(sramsim_main, ["curves", "--points", "7", "--csv", str(csv),
                                               "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert "v_over_vmin" in result.output and "3.970e-01" in result.output
    table = pd.read_csv(csv)
    assert list(table.columns) == ["v_over_vmin", "ber", "energy"] and len(table) == 7
    model = characterization.load(characterization.DEFAULT_TECH)
    np.testing.assert_allclose(table.ber, model.ber(table.v_over_vmin.to_numpy()), rtol=1e-9)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.csv", "curves.png"]


def test_cli_curves_reads_a_user_file(tmp_path):
    result = CliRunner().invoke(sramsim_main, ["curves", "--tech", str(write_csv(tmp_path, GOOD_ROWS))])
    assert result.exit_code == 0, result.output
    assert "name='tech'" in result.output


@pytest.mark.parametrize("args, message", [
    (["--tech", "nope"], "14nm-512x64, 14nm-512x64-two-point, 28nm-fpga-bram-kc705"),
    (["--plot", "curves.txt"], "suffix must be one of"),
    (["--points", "1"], "--points"),
])
def test_cli_curves_rejects_bad_options_without_output(tmp_path, args, message):
    args = [str(tmp_path / arg) if arg.endswith(".txt") else arg for arg in args]
    result = CliRunner().invoke(sramsim_main, ["curves", "--csv", str(tmp_path / "out.csv"), *args])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert os.listdir(tmp_path) == []


def test_cli_curves_help_ends_with_an_example():
    result = CliRunner().invoke(sramsim_main, ["curves", "--help"])
    assert result.exit_code == 0
    assert result.output.rstrip().splitlines()[-1].strip().startswith("sramsim curves --tech")


@pytest.mark.parametrize("value, kind, bounds, message", [
    (True, int, {}, "n=True is not valid: use an integer"),
    (1.5, int, {"min_val": 1}, "n=1.5 is not valid: use an integer >= 1"),
    (np.int64(0), int, {"min_val": 1}, "n=0 is not valid: use an integer >= 1"),
    (float("nan"), float, {"min_val": 0}, "n=nan is not valid: use a number >= 0"),
    (1.0, float, {"min_val": 0, "max_val": 1, "include_boundaries": "left"}, r"use a number in \[0, 1\)"),
    ("3", float, {"allowed": "a positive number"}, "n='3' is not valid: use a positive number"),
])
def test_check_scalar_names_the_value_and_what_is_allowed(value, kind, bounds, message):
    from characterization.validation import check_scalar

    with pytest.raises(ValueError, match=message):
        check_scalar(value, "n", kind, **bounds)


def test_check_scalar_returns_valid_values_unchanged():
    from characterization.validation import check_scalar

    assert check_scalar(np.int64(3), "n", int, min_val=1) == 3
    assert check_scalar(0.5, "p", float, min_val=0, max_val=1, include_boundaries="neither") == 0.5
