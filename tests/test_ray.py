"""Sweeps on Ray (`neuralfuse sweep --ray`): same files as a local sweep, retries, threads.

One local 2-CPU Ray instance serves the whole module (``ray_hooks.ray_cluster``).
"""
from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from torch.utils.data import TensorDataset

from neuralfuse import tradeoff
from neuralfuse.cli import main
from neuralfuse.tradeoff import sweep
from ray_hooks import arm, completed_calls, ray_cluster  # noqa: F401  (ray_cluster is a fixture)
from tiny import Shift, save_tiny_checkpoint, sweep_args, tiny_model

VOLTAGES = (1.0, 0.85, 0.75)
CHIPS = 3


def test_core_imports_do_not_import_ray():
    code = ("import sys, neuralfuse, neuralfuse.cli, neuralfuse.tradeoff, neuralfuse.devices, "
            "neuralfuse.grid, neuralfuse.distributed; print('ray' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.fixture(scope="module")
def setup():
    x = torch.rand(40, 3, 8, 8, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        y = tiny_model()(x).argmax(1)
    return TensorDataset(x, y)


def run(data, out, runner=None):
    return sweep(tiny_model(), data, VOLTAGES, generators={"shift": Shift().eval()}, chips=CHIPS,
                 out_dir=out, runner=runner)


@pytest.fixture(scope="module")
def local(setup, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "sweep"
    run(setup, out)
    return out


def assert_same_sweep(a, b):
    for name in ("sweep.csv", "chips.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    points = sorted(p.name for p in (a / "points").iterdir())
    assert points == sorted(p.name for p in (b / "points").iterdir())
    assert len(points) == len(VOLTAGES) * CHIPS + 1  # and "clean"
    for name in points:
        assert (a / "points" / name).read_bytes() == (b / "points" / name).read_bytes(), name


def ray_runner(**kwargs):
    from neuralfuse.distributed import ray_runner

    return ray_runner(**kwargs)


def test_ray_sweep_writes_the_same_files_as_a_local_sweep(ray_cluster, setup, local, tmp_path):
    table = run(setup, tmp_path / "ray", ray_runner(cpus_per_task=1))
    assert_same_sweep(local, tmp_path / "ray")
    pd.testing.assert_frame_equal(table, pd.read_csv(local / "sweep.csv", keep_default_na=False))


def test_killed_worker_is_retried_and_no_point_is_lost_or_repeated(ray_cluster, setup, local, tmp_path):
    """A worker ends (os._exit) in the middle of a chip; Ray retries the task, which measures only
    the voltages not yet on disk: every point is measured exactly once."""
    before = completed_calls(ray_cluster, "chip_accuracies")
    arm(ray_cluster, "chip_accuracies", after=2)  # dies after one point of its chip is saved
    run(setup, tmp_path / "ray", ray_runner(cpus_per_task=1))
    assert not (ray_cluster / "chip_accuracies.arm").exists()  # a worker did die
    assert completed_calls(ray_cluster, "chip_accuracies") - before == len(VOLTAGES) * CHIPS
    assert_same_sweep(local, tmp_path / "ray")


def test_sweep_moves_between_local_and_ray(ray_cluster, setup, local, tmp_path, monkeypatch):
    """Started locally and finished on Ray, and the reverse: the same files as one local run."""
    measure, calls = tradeoff.chip_accuracies, {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 4:
            raise KeyboardInterrupt
        return measure(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(tradeoff, "chip_accuracies", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run(setup, tmp_path / "local-then-ray")
    run(setup, tmp_path / "local-then-ray", ray_runner(cpus_per_task=1))
    assert_same_sweep(local, tmp_path / "local-then-ray")

    # without retries a dead worker fails the sweep; the points it saved stay, a local rerun finishes
    arm(ray_cluster, "chip_accuracies", after=3)
    with pytest.raises(Exception, match="(?i)worker|died|crash"):
        run(setup, tmp_path / "ray-then-local", ray_runner(cpus_per_task=1, max_retries=0))
    saved = len(list((tmp_path / "ray-then-local" / "points").glob("v*.json")))
    assert 2 <= saved < len(VOLTAGES) * CHIPS
    run(setup, tmp_path / "ray-then-local")
    assert_same_sweep(local, tmp_path / "ray-then-local")


def report_threads(device: str) -> tuple:
    import os

    import numba

    numba_threads = numba.get_num_threads()  # may start numba's threading layer
    return torch.get_num_threads(), numba_threads, os.environ["OMP_NUM_THREADS"], device


@pytest.mark.parametrize("cpus", [1, 2])
def test_task_threads_follow_the_task_cpus(ray_cluster, cpus):
    from neuralfuse.distributed import map_tasks

    assert map_tasks(report_threads, [()], cpus_per_task=cpus) == [(cpus, cpus, str(cpus), "cpu")]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def test_cli_sweep_on_ray_matches_local(ray_cluster, checkpoint, tmp_path):
    runner = CliRunner()
    for out, extra in (("local", ()), ("ray", ("--cpus-per-task", "0.5", "--ray"))):
        result = runner.invoke(main, sweep_args(checkpoint, tmp_path / out, *extra))
        assert result.exit_code == 0, result.output
    assert (tmp_path / "local" / "sweep.csv").read_bytes() == (tmp_path / "ray" / "sweep.csv").read_bytes()


@pytest.mark.parametrize("extra, message", [
    (("--cpus-per-task", "1"), "need --ray"),
    (("--gpus-per-task", "0.5"), "need --ray"),
    (("--cpus-per-task", "0", "--ray"), "--cpus-per-task"),
    (("--gpus-per-task", "-1", "--ray"), "--gpus-per-task"),
])
def test_cli_ray_options_bad_input_is_a_one_line_error(checkpoint, tmp_path, extra, message):
    result = CliRunner().invoke(main, sweep_args(checkpoint, tmp_path / "out", *extra))
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert not (tmp_path / "out").exists()
