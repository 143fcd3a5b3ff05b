"""--image-size: every neuralfuse command that takes --dataset can read a 'folder' tree."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from neuralfuse.checkpoint import save_checkpoint
from neuralfuse.cli import main
from neuralfuse.models import create_model


@pytest.fixture
def folder_and_base(tmp_path):
    """A 'folder' tree of 10 classes of 20x20 images (two per class and split) and a tiny base model."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in range(10):
            for i in range(2):
                path = tmp_path / "data" / split / f"class{c}" / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(path)
    torch.manual_seed(0)
    base = tmp_path / "base.pt"
    save_checkpoint(base, create_model("resnet18", width=1 / 16), arch="resnet18", width=1 / 16,
                    num_classes=10, bits=8, dataset="folder")
    return tmp_path / "data", base


@pytest.mark.parametrize("command", ["train-base", "train", "evaluate", "sweep"])
def test_every_command_with_dataset_has_image_size(command):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0 and "--dataset" in result.output and "--image-size" in result.output


@pytest.mark.parametrize("command", ["train-base", "train", "evaluate", "sweep"])
def test_a_folder_dataset_without_its_size_is_refused_naming_the_option(folder_and_base, tmp_path, command):
    root, base = folder_and_base
    args = {"train-base": [], "train": ["--base", str(base), "--generator", "ConvS", "--ber", "0.01"],
            "evaluate": ["--base", str(base), "--ber", "0.01"],
            "sweep": ["--base", str(base), "--voltages", "0.8,0.9"]}[command]
    output = tmp_path / "out"
    result = CliRunner().invoke(main, [command, *args, "--dataset", "folder", "--data-root", str(root),
                                       "--no-progress", *(() if command == "evaluate" else ("-o", str(output)))])
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert result.exit_code == 2 and len(errors) == 1 and "--image-size" in errors[0], result.output
    assert not output.exists()


def test_a_grid_reads_a_folder_dataset_at_its_image_size(folder_and_base, tmp_path):
    root, base = folder_and_base
    spec = tmp_path / "grid.toml"
    text = (f'base = "{base}"\ndataset = "folder"\ndata_root = "{root}"\n{{size}}'
            '[train]\ngenerator = "ConvS"\nber = 0.01\nepochs = 1\nbatch_size = 4\nmax_steps_per_epoch = 1\n'
            'n_chips = 1\nval_size = 4\nval_chips = 1\n[grid]\nseed = [0]\n[evaluate]\nchips = 1\n')
    spec.write_text(text.format(size=""))
    missing = CliRunner().invoke(main, ["grid", str(spec), "-o", str(tmp_path / "none"), "--no-progress"])
    assert missing.exit_code == 2 and "image_size in" in missing.output, missing.output
    assert not (tmp_path / "none").exists()
    spec.write_text(text.format(size="image_size = 32\n"))
    result = CliRunner().invoke(main, ["grid", str(spec), "-o", str(tmp_path / "grid"), "--no-progress"])
    assert result.exit_code == 0, result.output
    evaluation = json.loads(next((tmp_path / "grid" / "runs").glob("*/eval*.json")).read_text())
    assert evaluation["samples"] == 20 and evaluation["provenance"]["image_size"] == 32


def test_evaluate_reads_a_folder_dataset_at_the_given_size(folder_and_base, tmp_path):
    root, base = folder_and_base
    args = ["evaluate", "--base", str(base), "--ber", "0.01", "--chips", "1", "--dataset", "folder",
            "--data-root", str(root), "--latency-repeats", "1", "--no-progress"]
    missing = CliRunner().invoke(main, args)
    assert missing.exit_code == 2 and "--image-size" in missing.output and "Traceback" not in missing.output
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(main, [*args, "--image-size", "32", "--json", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads(out.read_text())
    assert saved["samples"] == 20 and saved["provenance"]["image_size"] == 32
    bad = CliRunner().invoke(main, ["evaluate", "--base", str(base), "--ber", "0.01", "--chips", "1",
                                    "--dataset", "default", "--image-size", "32"])
    assert bad.exit_code == 2 and "only for 'folder'" in bad.output


def test_train_base_and_train_take_image_size(folder_and_base, tmp_path):
    root, base = folder_and_base
    data = ["--dataset", "folder", "--data-root", str(root), "--image-size", "32"]
    result = CliRunner().invoke(main, ["train-base", "--width", "0.0625", "--epochs", "1",
                                       "--batch-size", "10", "--limit-batches", "1", "--no-progress",
                                       *data, "-o", str(tmp_path / "trained.pt")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, [
        "train", "--base", str(base), "--generator", "ConvS", "--ber", "0.01", "--chips-per-step", "1",
        "--epochs", "1", "--max-steps-per-epoch", "1", "--batch-size", "4", "--val-size", "4",
        "--val-chips", "1", "--no-progress", *data, "-o", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["provenance"]["image_size"] == 32
