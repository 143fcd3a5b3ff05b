"""Training grids (`neuralfuse grid`): specs, local runs, Ray runs with a worker killed mid-run."""
from __future__ import annotations

import json
import textwrap

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from neuralfuse.checkpoint import read_checkpoint, save_checkpoint
from neuralfuse.cli import main
from neuralfuse.grid import GridSpecError, load_spec, parse_spec, run_grid, run_name, run_one
from neuralfuse.models import create_model
from neuralfuse.toml_files import tomllib
from sramsim import MemoryConfig
from ray_hooks import arm, completed_calls, ray_cluster  # noqa: F401  (ray_cluster is a fixture)

STEPS = 2 * 2 * 3  # runs x epochs x steps per epoch

SPEC = """
base = "tiny.pt"
dataset = "default"

[train]
generator = "ConvS"
ber = 0.03
epochs = 2
batch_size = 8
train_subset = 24
max_steps_per_epoch = 3
chips_per_step = 2
val_size = 8
val_chips = 1
checkpoint_every = 1

[grid]
lambda = [1.0, 5.0]

[evaluate]
chips = 2
samples = 40
"""


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spec")
    torch.manual_seed(0)
    save_checkpoint(folder / "tiny.pt", create_model("resnet18", num_classes=10, width=1 / 16),
                    arch="resnet18", width=1 / 16, num_classes=10, bits=8)
    (folder / "grid.toml").write_text(SPEC)
    return folder / "grid.toml"


@pytest.fixture(scope="module")
def local_grid(spec_path, tmp_path_factory):
    """The grid run locally through the CLI, on one thread (as the 1-CPU Ray tasks below)."""
    out = tmp_path_factory.mktemp("local") / "grid"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = CliRunner().invoke(main, ["grid", str(spec_path), "-o", str(out), "--no-progress"])
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    return out, result.output


def generator_weights(run_dir):
    return read_checkpoint(run_dir / "generator.pt", "neuralfuse.generator")["state_dict"]


# --- specs ------------------------------------------------------------------------------------

def test_spec_is_the_cartesian_product_of_the_axes(tmp_path):
    spec = parse_spec({"base": "b.pt", "train": {"epochs": 1},
                       "grid": {"generator": ["UNetS", "ConvL"], "ber": [0.01, 0.03], "lambda": [5.0],
                                "seed": [0, 1]}}, tmp_path)
    assert len(spec.runs) == 8 and spec.base == (tmp_path / "b.pt").resolve()
    assert spec.runs[0].name == "UNetS-ber0.01-lam5-seed0"
    assert spec.runs[0].settings == {"epochs": 1, "generator": "UNetS", "ber": 0.01, "lam": 5.0, "seed": 0}
    assert spec.runs[-1].name == "ConvL-ber0.03-lam5-seed1"
    assert run_name({"generator": "UNetS", "voltage": 0.83}) == "UNetS-voltage0.83"


@pytest.mark.parametrize("raw, message", [
    ({"base": "b.pt", "grid": {"generator": ["UNetS"]}, "extra": 1}, "unknown grid spec key"),
    ({"grid": {"generator": ["UNetS"], "ber": [0.01]}}, "needs 'base'"),
    ({"base": "b.pt", "grid": {"generator": ["UNetS"], "ber": [0.01], "colour": [1]}}, "colour"),
    ({"base": "b.pt", "grid": {"generator": ["UNetS"], "ber": []}}, "non-empty list"),
    ({"base": "b.pt", "train": {"ber": 0.01}, "grid": {"generator": ["UNetS"], "ber": [0.01]}}, "both"),
    ({"base": "b.pt", "grid": {"generator": ["UNetS"], "ber": [0.01, 0.9]}}, "ber"),
    ({"base": "b.pt", "grid": {"generator": ["UNetS"], "ber": [0.01], "epochs": [0]}}, "epochs=0"),
    ({"base": "b.pt", "grid": {"generator": ["UNetS"]}}, "ber"),  # no operating point
    ({"base": "b.pt", "grid": {"generator": ["UNetS"], "ber": [0.01]}, "evaluate": {"chips": 0}}, "chips"),
    ({"base": "b.pt", "image_size": 0, "grid": {"generator": ["UNetS"], "ber": [0.01]}}, "image_size=0"),
    ({"base": "b.pt", "train": {"storage": "asym"}, "grid": {"generator": ["UNetS"], "ber": [0.01]}},
     "unknown storage format 'asym'"),
    ({"base": "b.pt", "train": {"memory": {"bits": 8}}, "grid": {"generator": ["UNetS"], "ber": [0.01]}},
     r"unknown \[train\] setting\(s\) \['memory'\]"),
    ({"base": "b.pt", "grid": {"generator": ["UNetS"], "ber": [0.01], "lam": [1.0], "lambda": [2.0]}},
     "gives both lam and lambda: give lambda only"),
])
def test_bad_specs_are_refused_naming_the_problem(raw, message):
    with pytest.raises(GridSpecError, match=message):
        parse_spec(raw)


def test_a_spec_gives_the_memory_config_flat_and_its_runs_inherit_the_rest_from_the_base(tmp_path, monkeypatch):
    save_checkpoint(tmp_path / "six.pt", create_model("resnet18", num_classes=10, width=1 / 16),
                    arch="resnet18", width=1 / 16, num_classes=10, memory=MemoryConfig(bits=6).to_dict())
    spec = parse_spec({"base": "six.pt", "train": {"generator": "ConvS", "ber": 0.03, "storage": "robust"},
                       "grid": {"fault_model": ["stuck-at", "flip"]}, "evaluate": {"chips": 1, "samples": 10}},
                      tmp_path)
    assert [run.name for run in spec.runs] == ["fault_modelstuck-at", "fault_modelflip"]
    seen = {}

    def train(run_dir, config, *args, **kwargs):
        run_dir.mkdir(parents=True)
        seen.update(config=config)

    monkeypatch.setattr("neuralfuse.eopm.train", train)
    monkeypatch.setattr("neuralfuse.checkpoint.load_generator", lambda *a, **k: (None, {"generator": "ConvS"}))
    monkeypatch.setattr("neuralfuse.evaluation.evaluate", lambda *a, **k: seen.update(evaluated=k) or {})
    path = run_one(spec, spec.runs[1], tmp_path / "out")
    expected = MemoryConfig(bits=6, storage="robust", fault_model="flip")
    assert seen["config"].memory == seen["evaluated"]["memory"] == expected
    assert path.name.startswith("evaluation-ber0.03-6bit-robust-flip-arrays-")


def test_spec_keys_are_the_train_options_and_the_record_field_names_still_read():
    grid = {"generator": ["UNetS"], "ber": [0.01]}
    spelled = parse_spec({"base": "b.pt", "train": {"chips_per_step": 3, "lambda": 2.0}, "grid": grid})
    recorded = parse_spec({"base": "b.pt", "train": {"n_chips": 3, "lam": 2.0}, "grid": grid})
    assert spelled.runs == recorded.runs
    assert spelled.runs[0].settings == {"n_chips": 3, "lam": 2.0, "generator": "UNetS", "ber": 0.01}
    with pytest.raises(GridSpecError, match="chips_per_step") as refused:
        parse_spec({"base": "b.pt", "grid": {**grid, "chips": [3]}})
    assert "lambda" in str(refused.value) and "n_chips" not in str(refused.value)


def test_unreadable_spec_is_refused(tmp_path):
    (tmp_path / "bad.toml").write_text("base = \n")
    with pytest.raises(GridSpecError, match="cannot read grid spec"):
        load_spec(tmp_path / "bad.toml")


def test_cli_grid_bad_input_is_a_one_line_error(spec_path, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(SPEC.replace("lambda = [1.0, 5.0]", "lambda = []"))
    missing = tmp_path / "missing.toml"
    missing.write_text(SPEC.replace('"tiny.pt"', '"nowhere.pt"'))
    for path, extra, hint in ((bad, [], "non-empty list"), (missing, [], "does not exist"),
                              (spec_path, ["--gpus-per-task", "1"], "need --ray"),
                              (spec_path, ["--device", "tpu"], "use auto, cpu, cuda or cuda:N")):
        result = CliRunner().invoke(main, ["grid", str(path), "-o", str(tmp_path / "out"), *extra])
        assert result.exit_code == 2, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert len(errors) == 1 and hint in errors[0], result.output
    assert not (tmp_path / "out").exists()


# --- running ----------------------------------------------------------------------------------

def test_local_grid_trains_evaluates_and_tables_every_run(spec_path, local_grid):
    out, output = local_grid
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == ["lam1", "lam5"]
    for name in runs:
        run_dir = out / "runs" / name
        assert json.loads((run_dir / "config.json").read_text())["config"]["lam"] == float(name[3:])
        assert len(pd.read_csv(run_dir / "metrics.csv")) == 2
        evaluation = json.loads((run_dir / "evaluation-ber0.03-8bit-stuck-at-arrays-14nm-512x64-chips0-1-test-default-40images.json").read_text())
        assert evaluation["generator"]["name"] == "ConvS" and len(evaluation["chips"]) == 2
    table = pd.read_csv(out / "compare.csv")
    assert list(table.label) == ["lam1", "lam5"] and table.rp.notna().all()
    assert "lam5" in output
    compared = CliRunner().invoke(main, ["compare", str(out / "runs" / "lam1"), str(out / "runs" / "lam5")])
    assert compared.exit_code == 0 and "ConvS" in compared.output

    again = run_grid(load_spec(spec_path), out)  # everything done: nothing is trained again
    pd.testing.assert_frame_equal(again, table, check_dtype=False)
    with pytest.raises(GridSpecError, match="another grid"):
        run_grid(parse_spec({**_raw(), "grid": {"lambda": [2.0]}}, spec_path.parent), out)


def _raw():
    return tomllib.loads(SPEC)


@pytest.mark.slow  # about 40 s on 2 busy cores: a worker restarts and reloads torch and the data
def test_ray_grid_with_a_killed_worker_ends_with_the_uninterrupted_generators(
        ray_cluster, spec_path, local_grid, tmp_path):
    """One worker dies (os._exit) in the middle of its run; Ray retries the task, which resumes the
    run from its last checkpoint (no step is trained twice) and ends with the generator of the
    uninterrupted local run, bit for bit."""
    before = completed_calls(ray_cluster, "eopm_step")
    arm(ray_cluster, "eopm_step", after=4)  # step 4 of a run: in its second epoch
    table = run_grid(load_spec(spec_path), tmp_path / "grid", ray={"address": None, "cpus_per_task": 1})
    assert not (ray_cluster / "eopm_step.arm").exists()  # a worker did die
    assert completed_calls(ray_cluster, "eopm_step") - before == STEPS
    local, _ = local_grid
    for name in ("lam1", "lam5"):
        ours, theirs = generator_weights(tmp_path / "grid" / "runs" / name), generator_weights(local / "runs" / name)
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), name
        assert len(pd.read_csv(tmp_path / "grid" / "runs" / name / "metrics.csv")) == 2
    pd.testing.assert_frame_equal(table, pd.read_csv(local / "compare.csv"), check_dtype=False)


def test_spec_example_in_the_docstring_parses():
    import neuralfuse.grid

    doc = neuralfuse.grid.__doc__
    toml = textwrap.dedent(doc[doc.index('base = "r18.pt"'):doc.index("spec = load_spec")])
    toml = "\n".join(line.split("#")[0] for line in toml.splitlines())
    spec = parse_spec(tomllib.loads(toml))
    assert len(spec.runs) == 8
