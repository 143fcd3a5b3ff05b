"""`neuralfuse show`: the picture of what a generator does to its inputs."""
from __future__ import annotations

import struct

import pytest
import torch
from click.testing import CliRunner
from torch.utils.data import TensorDataset

from neuralfuse.cli import main
from neuralfuse.shipped import SETUPS
from neuralfuse.transformation_figure import PANEL_INCHES, TITLE_INCHES, class_examples

SHIPPED = SETUPS["resnet18-w0.25"]


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG file's header."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("per_class", [1, 2])
def test_show_writes_a_png_grid_of_three_rows_and_a_column_per_image(tmp_path, per_class):
    out = tmp_path / "show.png"
    result = CliRunner().invoke(main, ["show", "--run", str(SHIPPED.generator_run), "--base",
                                       str(SHIPPED.base), "--per-class", str(per_class), "-o", str(out)])
    assert result.exit_code == 0, result.output
    columns = 10 * per_class   # CIFAR-10's classes
    dpi = 100
    assert png_size(out.read_bytes()) == (round(columns * PANEL_INCHES * dpi),
                                          round((3 * PANEL_INCHES + TITLE_INCHES) * dpi))
    assert f"{columns} test images" in result.output


def test_show_refuses_a_base_the_generator_was_not_trained_for_and_an_unknown_image_format(tmp_path):
    other = SETUPS["vgg11"].base
    out = tmp_path / "show.png"
    result = CliRunner().invoke(main, ["show", "--run", str(SHIPPED.generator_run), "--base",
                                       str(other), "-o", str(out)])
    assert result.exit_code == 2 and "trained for another base model" in result.output and not out.exists()
    result = CliRunner().invoke(main, ["show", "--run", str(SHIPPED.generator_run),
                                       "-o", str(tmp_path / "show.xyz")])
    assert result.exit_code == 2 and "the suffix must be one of" in result.output


def test_class_examples_are_the_first_of_each_class_in_order():
    images = torch.arange(8.0).reshape(8, 1, 1, 1)
    labels = torch.tensor([2, 0, 2, 1, 0, 2, 1, 0])
    x, y = class_examples(TensorDataset(images, labels), per_class=2)
    assert y.tolist() == [0, 0, 1, 1, 2, 2]
    assert x.flatten().tolist() == [1.0, 4.0, 3.0, 6.0, 0.0, 2.0]
