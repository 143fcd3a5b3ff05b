"""Chips and fault maps: statistics, nesting, reproducibility, regions, and the faultmap command."""
import decimal
import hashlib
import math
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from numba import njit
from scipy import stats

import characterization
from sramsim import _fault_streams
from sramsim.array import ArrayGeometry
from sramsim.cli import main
from sramsim.faults import FAULT_MODELS, Chip, FaultMap, check_fault_model

CELLS = 2**24  # 512 arrays of 512x64
MASK64 = 2**64 - 1
GAMMA = 0x9E3779B97F4A7C15


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def reference_array_faults(seed: int, array: int, n: int, ber: float) -> tuple[list, list]:
    """The documented algorithm of sramsim._fault_streams, in plain Python: (cells, stuck) of one array
    in stream order (increasing failure quantile)."""
    state = _mix((_mix((seed + GAMMA) & MASK64) + _mix((array * GAMMA + GAMMA) & MASK64)) & MASK64)
    hazard, cells, stuck = 0.0, [], []
    while len(cells) < n:
        state = (state + GAMMA) & MASK64
        hazard -= math.log(((_mix(state) >> 11) + 1.0) * 2.0**-53) / (n - len(cells))
        if hazard >= -math.log1p(-ber):
            break
        while True:
            state = (state + GAMMA) & MASK64
            x = _mix(state)
            cell = ((x >> 32) * n) >> 32
            if cell not in cells:
                break
        cells.append(cell)
        stuck.append(x & 1)
    return cells, stuck


@pytest.mark.parametrize("geometry", [ArrayGeometry(16, 64), ArrayGeometry(5, 13)])
def test_kernel_follows_the_documented_algorithm(geometry):
    chip = Chip(seed=2**62 + 12345, geometry=geometry)
    fault_map = chip.fault_map(3 * geometry.cells, ber=0.3)
    expected = []
    for array in range(3):
        cells, stuck = reference_array_faults(chip.seed, array, geometry.cells, 0.3)
        expected += [(array * geometry.cells + c, s) for c, s in zip(cells, stuck)]
    expected.sort()
    assert len(expected) > 20
    assert list(zip(fault_map.cells.tolist(), fault_map.stuck.tolist())) == expected


def test_the_kernels_log_is_within_an_ulp_of_the_exact_log():
    """Hazards come from the kernels' own logarithm (no C library): check it against decimal at
    the edges of its table and exponent range and at random draws."""
    rng = np.random.default_rng(3)
    edges = [2**p + d for p in range(54) for d in (-1, 0, 1) if 1 <= 2**p + d <= 2**53]
    draws = np.concatenate([np.array(edges + [127, 129, 255, 383], dtype=np.uint64),
                            rng.integers(1, 2**53 + 1, 3000, dtype=np.uint64),
                            rng.integers(1, 2**16, 500, dtype=np.uint64),
                            np.uint64(2**53) - rng.integers(0, 2**16, 500, dtype=np.uint64)])
    got = _log_uniforms(draws)
    with decimal.localcontext() as context:
        context.prec = 50
        exact = [decimal.Decimal(int(x)).ln() - 53 * decimal.Decimal(2).ln() for x in draws]
        error = np.array([float(abs(decimal.Decimal(float(g)) - e)) for g, e in zip(got, exact)])
    bound = 2.0**-52 * np.maximum(1.0, np.abs([float(e) for e in exact]))
    assert np.all(error <= bound), draws[np.argmax(error / bound)]
    assert got[draws == 2**53][0] == 0.0


@njit
def _log_uniforms(draws):
    out = np.empty(draws.size)
    for i in range(draws.size):
        out[i] = _fault_streams._log_uniform(draws[i])
    return out


@pytest.mark.parametrize("ber", [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 5e-2])
def test_faulty_fraction_is_within_4_sigma_of_the_ber(ber):
    fault_map = Chip(seed=11).fault_map(CELLS, ber=ber)
    sigma = math.sqrt(CELLS * ber * (1 - ber))
    assert abs(len(fault_map) - CELLS * ber) < 4 * sigma
    assert fault_map.cells.dtype == np.int64 and np.all(np.diff(fault_map.cells) > 0)
    assert fault_map.cells.min() >= 0 and fault_map.cells.max() < CELLS


def test_maps_are_nested_across_rates_with_the_same_stuck_values():
    chip = Chip(seed=5)
    maps = [chip.fault_map(CELLS // 4, ber=p) for p in (1e-4, 1e-3, 4e-3, 1e-2, 5e-2)]
    for low, high in zip(maps, maps[1:]):
        inside = np.isin(low.cells, high.cells)
        assert inside.all()
        np.testing.assert_array_equal(high.stuck[np.isin(high.cells, low.cells)], low.stuck)
        restricted = high.restrict(low.ber)
        np.testing.assert_array_equal(restricted.cells, low.cells)
        np.testing.assert_array_equal(restricted.stuck, low.stuck)


def test_maps_are_nested_across_voltages_and_follow_the_technology():
    model = characterization.load(characterization.DEFAULT_TECH, extrapolate=True)
    chip = Chip(seed=6)
    voltages = [0.95, 0.9, 0.85, 0.83, 0.8]
    maps = [chip.fault_map(CELLS // 4, voltage=v) for v in voltages]
    for high_v, low_v in zip(maps, maps[1:]):
        assert np.isin(high_v.cells, low_v.cells).all()
    at_083 = maps[3]
    assert at_083.voltage == 0.83 and at_083.ber == pytest.approx(model.ber(0.83))
    np.testing.assert_array_equal(at_083.cells, chip.fault_map(CELLS // 4, ber=model.ber(0.83)).cells)
    # each faulty cell's critical voltage lies above the voltage it fails at
    assert np.all(model.voltage_at_ber(at_083.quantile) > 0.83)


def test_faults_are_uniform_over_bit_positions_rows_and_columns():
    geometry = ArrayGeometry()
    cells = Chip(seed=21).fault_map(CELLS, ber=0.01).cells
    row = (cells % geometry.cells) // geometry.cols
    col = cells % geometry.cols
    array = cells // geometry.cells
    for values, bins in ((col % 8, 8), (row, 512), (col, 64), (array, CELLS // geometry.cells)):
        counts = np.bincount(values, minlength=bins)
        assert stats.chisquare(counts).pvalue > 1e-3


def test_stuck_values_are_zero_or_one_half_the_time():
    stuck = Chip(seed=8).fault_map(CELLS, ber=0.01).stuck
    assert set(np.unique(stuck).tolist()) == {0, 1}
    assert stats.binomtest(int(stuck.sum()), stuck.size).pvalue > 1e-3


def test_different_chips_have_independent_maps():
    a = Chip(seed=1).fault_map(CELLS, ber=0.02).cells
    b = Chip(seed=2).fault_map(CELLS, ber=0.02).cells
    shared, expected = np.intersect1d(a, b).size, CELLS * 0.02**2
    assert abs(shared - expected) < 4 * math.sqrt(expected)


def test_a_region_alone_equals_the_same_region_cut_from_a_larger_map():
    chip = Chip(seed=99)
    whole = chip.fault_map(10 * 32768, ber=0.02)
    start, n = 3 * 32768 + 1234, 4 * 32768 + 77
    region = chip.fault_map(n, ber=0.02, start=start)
    cut = (whole.cells >= start) & (whole.cells < start + n)
    np.testing.assert_array_equal(region.cells, whole.cells[cut])
    np.testing.assert_array_equal(region.stuck, whole.stuck[cut])
    np.testing.assert_array_equal(region.hazard, whole.hazard[cut])
    assert len(chip.fault_map(0, ber=0.02, start=start)) == 0


def _digest(fault_map: FaultMap) -> str:
    return hashlib.sha256(fault_map.cells.tobytes() + fault_map.stuck.tobytes()).hexdigest()


def test_the_same_seed_gives_the_same_map_in_another_process():
    code = ("import hashlib; from sramsim.faults import Chip; "
            "m = Chip(seed=2**40 + 3).fault_map(2**22, ber=0.01, start=12345); "
            "print(hashlib.sha256(m.cells.tobytes() + m.stuck.tobytes()).hexdigest())")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    here = Chip(seed=2**40 + 3).fault_map(2**22, ber=0.01, start=12345)
    assert len(here) > 0
    assert other.stdout.strip() == _digest(here)


def test_bad_requests_are_refused_with_the_value_named():
    chip = Chip(seed=0)
    with pytest.raises(ValueError, match="exactly one of voltage"):
        chip.fault_map(100)
    with pytest.raises(ValueError, match="exactly one of voltage"):
        chip.fault_map(100, voltage=0.9, ber=0.01)
    with pytest.raises(ValueError, match="ber=0.7 is not valid"):
        chip.fault_map(100, ber=0.7)
    with pytest.raises(ValueError, match="0.3"):
        chip.fault_map(100, voltage=0.3)
    with pytest.raises(ValueError, match="n_cells=-1"):
        chip.fault_map(-1, ber=0.01)
    with pytest.raises(ValueError, match="seed=-1"):
        Chip(seed=-1)
    with pytest.raises(ValueError, match="seed"):
        Chip(seed=2**63)
    with pytest.raises(ValueError, match="'bitflip'"):
        check_fault_model("bitflip")
    with pytest.raises(ValueError, match="cannot raise"):
        chip.fault_map(100, ber=0.01).restrict(0.02)
    assert FAULT_MODELS == ("stuck-at", "flip")


# -- sramsim faultmap ---------------------------------------------------------------------------

def test_faultmap_command_writes_the_documented_keys(tmp_path):
    out = tmp_path / "chip3.npz"
    result = CliRunner().invoke(main, ["faultmap", "--voltage", "0.83", "--chip", "3", "--arrays", "4",
                                       "--fault-model", "flip", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "faulty cells" in result.output and "flip" in result.output
    saved = np.load(out)
    expected = Chip(seed=3).fault_map(4 * 32768, voltage=0.83)
    np.testing.assert_array_equal(saved["cell_index"], expected.cells)
    np.testing.assert_array_equal(saved["stuck_value"], expected.stuck)
    assert saved["cell_index"].dtype == np.int64 and saved["stuck_value"].dtype == np.uint8
    assert (int(saved["rows"]), int(saved["cols"]), int(saved["arrays"])) == (512, 64, 4)
    assert float(saved["voltage"]) == 0.83 and float(saved["ber"]) == pytest.approx(expected.ber)
    assert int(saved["seed"]) == 3 and str(saved["fault_model"]) == "flip"
    assert str(saved["tech"]) == characterization.DEFAULT_TECH
    assert f"{len(expected)}" in result.output


def test_faultmap_by_ber_and_bits(tmp_path):
    out = tmp_path / "map.npz"
    result = CliRunner().invoke(main, ["faultmap", "--ber", "0.05", "--chip", "1", "--cells", "1000",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    saved = np.load(out)
    assert int(saved["n_cells"]) == 1000 and np.isnan(saved["voltage"])
    assert saved["cell_index"].max() < 1000


def test_faultmap_help_has_an_example():
    result = CliRunner().invoke(main, ["faultmap", "--help"])
    assert result.exit_code == 0 and "sramsim faultmap --voltage" in result.output


@pytest.mark.parametrize("args, named", [
    (["--voltage", "0.3", "--arrays", "1"], "0.3"),
    (["--ber", "0", "--arrays", "1"], "0<x<=0.5"),
    (["--ber", "0.6", "--arrays", "1"], "0.6"),
    (["--ber", "0.01", "--arrays", "-2"], "-2"),
    (["--ber", "0.01", "--cells", "0"], "x>=1"),
    (["--ber", "0.01", "--arrays", "1", "--tech", "no-such-tech"], "no-such-tech"),
    (["--ber", "0.01", "--arrays", "1", "--fault-model", "bitflip"], "bitflip"),
    (["--ber", "0.01", "--voltage", "0.9", "--arrays", "1"], "exactly one of --voltage or --ber"),
    (["--arrays", "1"], "exactly one of --voltage or --ber"),
    (["--ber", "0.01"], "exactly one of --arrays or --cells"),
])
def test_faultmap_bad_input_is_a_one_line_error_and_no_file(tmp_path, args, named):
    out = tmp_path / "map.npz"
    result = CliRunner().invoke(main, ["faultmap", "--chip", "1", "-o", str(out), *args])
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    error = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(error) == 1 and named in error[0]
    assert list(tmp_path.iterdir()) == []


def test_faultmap_refuses_an_unwritable_output(tmp_path):
    out = tmp_path / "missing-folder" / "map.npz"
    result = CliRunner().invoke(main, ["faultmap", "--ber", "0.01", "--chip", "1", "--arrays", "1",
                                       "-o", str(out)])
    assert result.exit_code == 2 and "missing-folder" in result.output
    assert not out.parent.exists()


# -- maps of any size: --start, streaming, refusal ------------------------------------------------

def _same_files(a, b) -> None:
    with np.load(a) as x, np.load(b) as y:
        assert sorted(x.files) == sorted(y.files)
        for key in x.files:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def test_a_streamed_map_file_equals_the_whole_map_file(tmp_path):
    from sramsim.mapfile import stream_fault_map

    chip = Chip(seed=8, geometry=ArrayGeometry(64, 64))
    start, n = 5 * 4096 + 333, 23 * 4096 + 17
    chip.fault_map(n, voltage=0.85, start=start).save(tmp_path / "whole.npz", "flip")
    faulty = stream_fault_map(tmp_path / "streamed.npz", chip, n, voltage=0.85, start=start,
                              fault_model="flip", chunk_arrays=3)
    _same_files(tmp_path / "whole.npz", tmp_path / "streamed.npz")
    assert faulty == len(np.load(tmp_path / "whole.npz")["cell_index"]) > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["streamed.npz", "whole.npz"]  # no spool left
    with pytest.raises(ValueError, match="chunk_arrays=0"):
        stream_fault_map(tmp_path / "x.npz", chip, n, ber=0.01, chunk_arrays=0)


def test_faultmap_start_gives_the_region_cut_from_a_whole_map(tmp_path):
    whole = Chip(seed=4).fault_map(6 * 32768, ber=0.02)
    for extra in ([], ["--chunk-arrays", "1"]):
        out = tmp_path / f"region{len(extra)}.npz"
        result = CliRunner().invoke(main, ["faultmap", "--ber", "0.02", "--chip", "4", "--cells",
                                           "70000", "--start", "40000", "-o", str(out), *extra])
        assert result.exit_code == 0, result.output
        assert ("streamed in chunks of 1 arrays" in result.output) == bool(extra)
        saved = np.load(out)
        cut = (whole.cells >= 40000) & (whole.cells < 110000)
        np.testing.assert_array_equal(saved["cell_index"], whole.cells[cut])
        np.testing.assert_array_equal(saved["stuck_value"], whole.stuck[cut])
        np.testing.assert_array_equal(saved["quantile"], whole.quantile[cut])
        assert (int(saved["start"]), int(saved["n_cells"]), int(saved["arrays"])) == (40000, 70000, 3)


def test_faultmap_streams_when_memory_is_short(tmp_path, monkeypatch):
    import sramsim.mapfile

    monkeypatch.setattr(sramsim.mapfile, "available_memory", lambda: 300_000)
    out = tmp_path / "map.npz"
    result = CliRunner().invoke(main, ["faultmap", "--ber", "0.01", "--chip", "2", "--arrays", "12",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "streamed in chunks of 1 arrays" in result.output   # a quarter of the memory per chunk
    np.testing.assert_array_equal(np.load(out)["cell_index"], Chip(seed=2).fault_map(12 * 32768, ber=0.01).cells)


def test_faultmap_refuses_a_map_larger_than_the_disk_in_one_line(tmp_path):
    out = tmp_path / "big.npz"
    result = CliRunner().invoke(main, ["faultmap", "--voltage", "0.83", "--chip", "1", "--arrays",
                                       "100000000", "-o", str(out)])
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(error) == 1
    assert "3,276,800,000,000 cells" in error[0] and "GB of disk" in error[0] and "of memory" in error[0]
    assert list(tmp_path.iterdir()) == []


def test_faultmap_refuses_a_region_past_the_last_cell(tmp_path):
    result = CliRunner().invoke(main, ["faultmap", "--ber", "0.01", "--chip", "1", "--cells", "10",
                                       "--start", str(2**63 - 5), "-o", str(tmp_path / "m.npz")])
    assert result.exit_code == 2 and "2**63 - 1" in result.output
    result = CliRunner().invoke(main, ["faultmap", "--ber", "0.01", "--chip", "1", "--cells", "10",
                                       "--start", "-1", "-o", str(tmp_path / "m.npz")])
    assert result.exit_code == 2 and "-1" in result.output
    assert list(tmp_path.iterdir()) == []
