"""The scan for the lowest voltage keeping an accuracy floor (the demo's "which protection")."""
from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch.utils.data import TensorDataset

from neuralfuse.floor_scan import scan_floor
from neuralfuse.tradeoff import load_record, sweep
from sramsim import Deployment
from tiny import tiny_model

# the tiny model's mean PA over 4 chips: 100, 86.5, 59.4, 39.6, 22.9 and, at 0.72, 30.7 again
LADDER = (1.0, 0.9, 0.85, 0.8, 0.76)


@pytest.fixture(scope="module")
def setup():
    """The tiny model and inputs labelled with its own fault-free predictions (CA = 100%)."""
    model = tiny_model()
    x = torch.rand(48, 3, 8, 8, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with Deployment(model).quantized(), torch.inference_mode():
        y = model(x).argmax(1)
    return model, TensorDataset(x, y)


@pytest.fixture(scope="module")
def full(setup):
    return sweep(*setup, (*LADDER, 0.72), chips=4).set_index("voltage")


def scan(setup, tmp_path, start, floor, ladder=LADDER, **options):
    steps = []
    table = scan_floor(*setup, ladder, start=start, floor=floor, chips=4, out_dir=tmp_path / "scan",
                       on_step=lambda v, kept: steps.append((v, kept)), **options)
    return table, steps


def test_from_a_voltage_that_keeps_the_floor_the_scan_goes_down_to_the_first_that_loses_it(setup, full, tmp_path):
    table, steps = scan(setup, tmp_path, start=0.9, floor=50.0)
    assert steps == [(0.9, True), (0.85, True), (0.8, False)]
    assert sorted(table.voltage, reverse=True) == [0.9, 0.85, 0.8]
    assert load_record(tmp_path / "scan")["voltages"] == [0.9, 0.85, 0.8]   # an ordinary sweep folder
    pd.testing.assert_series_equal(table.set_index("voltage").pa_mean, full.pa_mean.loc[[0.9, 0.85, 0.8]])


def test_from_a_voltage_that_loses_the_floor_the_scan_checks_the_top_then_goes_up(setup, tmp_path):
    _, steps = scan(setup, tmp_path, start=0.76, floor=50.0)
    assert steps == [(0.76, False), (1.0, True), (0.8, False), (0.85, True)]


def test_a_floor_lost_even_at_the_highest_voltage_costs_two_voltages(setup, tmp_path):
    _, steps = scan(setup, tmp_path, start=0.85, floor=100.5)
    assert steps == [(0.85, False), (1.0, False)]


def test_the_scan_stops_at_the_first_loss_even_where_a_lower_voltage_would_keep_the_floor(setup, tmp_path):
    """The documented limit: 0.72 keeps a 25% floor (30.7%) below 0.76, which loses it (22.9%)."""
    _, steps = scan(setup, tmp_path, start=1.0, floor=25.0, ladder=(*LADDER, 0.72))
    assert steps[-1] == (0.76, False) and 0.72 not in [v for v, _ in steps]


def test_the_scan_follows_the_criterion(setup, tmp_path):
    _, mean = scan(setup, tmp_path / "mean", start=1.0, floor=55.0)
    _, worst = scan(setup, tmp_path / "worst", start=1.0, floor=55.0, criterion="yield:1")
    assert len(worst) <= len(mean) and worst[-1][1] is False


def test_a_start_outside_the_voltages_is_refused(setup, tmp_path):
    with pytest.raises(ValueError, match="start=0.95 is not one of the voltages 1, 0.9, 0.85, 0.8, 0.76"):
        scan(setup, tmp_path, start=0.95, floor=50.0)
    assert not (tmp_path / "scan").exists()
