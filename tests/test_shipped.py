"""The public API of the shipped models (neuralfuse.shipped) and the records shipped with them."""
from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

import neuralfuse
from neuralfuse.cli import RENAMED, main
from neuralfuse.shipped import DEFAULT_SETUP, SETUPS

ROOT = Path(__file__).resolve().parents[1]


def test_names_list_every_setup_the_default_first():
    assert neuralfuse.shipped.names()[0] == DEFAULT_SETUP
    assert sorted(neuralfuse.shipped.names()) == sorted(SETUPS)


def test_load_gives_the_base_model_and_its_generator():
    model, meta = neuralfuse.shipped.load("resnet18-w0.25")
    assert (meta["arch"], meta["width"], meta["num_classes"]) == ("resnet18", 0.25, 10)
    assert not model.training
    generator, trained = neuralfuse.shipped.load_generator("resnet18-w0.25", base=model)  # checks the pair
    assert trained["generator"] == "UNetS" and generator is not None


@pytest.mark.parametrize("function", ["load", "load_generator", "setup"])
def test_an_unknown_name_is_an_error_listing_the_known_ones(function):
    with pytest.raises(ValueError, match=r"no shipped setup is called 'vgg12': use one of vgg11, resnet18-w0.25"):
        getattr(neuralfuse.shipped, function)("vgg12")


@pytest.mark.parametrize("name", sorted(SETUPS))
def test_the_shipped_generator_records_a_command_that_runs_today(name):
    """Every option of the recorded `neuralfuse train` command exists today (or is a former spelling
    that still reads), and its base model is in the repository (the first run of a fine-tune,
    --init-run, is documented in generator.md)."""
    record = json.loads((SETUPS[name].generator_run / "config.json").read_text())
    words = shlex.split(record["command"])
    assert words[:2] == ["neuralfuse", "train"]
    known = {opt for param in main.commands["train"].params for opt in (*param.opts, *param.secondary_opts)}
    known |= {old for old, new in RENAMED.items() if new in known}   # former spellings still read
    options = [word for word in words[2:] if word.startswith("-")]
    assert set(options) <= known, set(options) - known
    assert (ROOT / words[words.index("--base") + 1]).is_file()
