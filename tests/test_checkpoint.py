"""Base-model checkpoints: round trip, metadata, and every way a file can be wrong."""
from __future__ import annotations

import os
import pickle

import pytest
import torch

from neuralfuse.checkpoint import (
    BASE_TRAINING_STATE, CheckpointError, atomic_save, load_base_model, make_payload,
    read_checkpoint, save_checkpoint,
)
from neuralfuse.models import create_model
from neuralfuse.qat import enable_qat, export_quantized

META = {"arch": "vgg11", "width": 0.0625, "num_classes": 4, "dataset": "default", "bits": 8}


@pytest.fixture
def model():
    torch.manual_seed(0)
    return create_model("vgg11", num_classes=4, width=0.0625).eval()


@pytest.fixture
def saved(tmp_path, model):
    return save_checkpoint(tmp_path / "base.pt", model, **META, metrics=[{"epoch": 1, "acc": 0.5}])


def test_round_trip_rebuilds_the_same_model_with_its_metadata(saved, model):
    loaded, meta = load_base_model(saved, expect={"arch": "vgg11", "num_classes": 4})
    assert not loaded.training
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert {k: meta[k] for k in META} == META
    assert meta["metrics"] == [{"epoch": 1, "acc": 0.5}]
    assert "state_dict" not in meta


def test_save_is_atomic_and_leaves_no_temporary_files(saved):
    assert [p.name for p in saved.parent.iterdir()] == ["base.pt"]


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_base_model(tmp_path / "nope.pt")


def test_foreign_files_are_rejected(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a checkpoint written by torch.save"):
        load_base_model(text)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="not a neuralfuse checkpoint"):
        load_base_model(plain)


class MakesDirectoryWhenUnpickled:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_unsafe_pickles_are_refused_not_executed(tmp_path):
    evil, marker = tmp_path / "evil.pt", tmp_path / "pwned"
    with open(evil, "wb") as f:
        pickle.dump({"format": "neuralfuse.base-model", "x": MakesDirectoryWhenUnpickled(marker)},
                    f, protocol=2)
    with pytest.raises(CheckpointError, match="not a checkpoint written by torch.save"):
        load_base_model(evil)
    assert not marker.exists()


def test_training_state_is_not_a_base_model(tmp_path, model):
    state = atomic_save(make_payload(BASE_TRAINING_STATE, model.state_dict(), {}), tmp_path / "s.pt")
    with pytest.raises(CheckpointError, match="base-training-state checkpoint, not a"):
        load_base_model(state)
    assert read_checkpoint(state, BASE_TRAINING_STATE)["format"] == BASE_TRAINING_STATE


def test_newer_format_version_is_refused(tmp_path, model):
    path = tmp_path / "future.pt"
    torch.save({**make_payload("neuralfuse.base-model", model.state_dict(), META),
                "format_version": 99}, path)
    with pytest.raises(CheckpointError, match="format version 99"):
        load_base_model(path)


@pytest.mark.parametrize("expect, message", [
    ({"arch": "resnet18"}, "arch='vgg11', but arch='resnet18' was expected"),
    ({"num_classes": 10}, "num_classes=4, but num_classes=10 was expected"),
    ({"dataset": "gtsrb"}, "dataset='default', but dataset='gtsrb'"),
])
def test_expectation_mismatch_names_both_values(saved, expect, message):
    with pytest.raises(CheckpointError, match=message):
        load_base_model(saved, expect=expect)


def test_weights_that_do_not_fit_the_architecture_are_named(tmp_path, model):
    path = save_checkpoint(tmp_path / "wide.pt", model, **{**META, "width": 0.125})
    with pytest.raises(CheckpointError, match=r"do not fit the model: .*has shape"):
        load_base_model(path)


def test_unknown_architecture_and_missing_metadata(tmp_path, model):
    path = save_checkpoint(tmp_path / "x.pt", model, **{**META, "arch": "alexnet"})
    with pytest.raises(CheckpointError, match="unknown model 'alexnet'"):
        load_base_model(path)
    bare = atomic_save(make_payload("neuralfuse.base-model", model.state_dict(), {}),
                       tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="lacks metadata"):
        load_base_model(bare)


def test_save_refuses_what_could_not_be_loaded_back(tmp_path, model):
    with pytest.raises(ValueError, match="needs metadata"):
        save_checkpoint(tmp_path / "a.pt", model, arch="vgg11")
    with pytest.raises(TypeError, match="note is a object"):
        save_checkpoint(tmp_path / "b.pt", model, **META, note=object())
    with pytest.raises(ValueError, match="export_quantized"):
        save_checkpoint(tmp_path / "c.pt", enable_qat(model), **META)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bits", [8, 4])
def test_compact_file_holds_integers_and_loads_bit_identical_weights(tmp_path, model, bits):
    torch.manual_seed(1)
    qat = enable_qat(create_model("vgg11", num_classes=4, width=0.25), bits)
    qat(torch.randn(4, 3, 32, 32)).sum().backward()        # a trained-looking BatchNorm state too
    exported = export_quantized(qat.eval())
    meta = {**META, "width": 0.25, "bits": bits}
    full = save_checkpoint(tmp_path / "full.pt", exported, **meta)
    compact = save_checkpoint(tmp_path / "compact.pt", exported, compact=True, **meta)
    assert os.path.getsize(compact) < 0.3 * os.path.getsize(full)
    loaded, loaded_meta = load_base_model(compact)
    expected = exported.state_dict()
    assert loaded.state_dict().keys() == expected.keys()
    for key, value in loaded.state_dict().items():
        assert value.dtype == expected[key].dtype, key
        bits_of = (lambda t: t.view(torch.int32)) if value.dtype == torch.float32 else (lambda t: t)
        assert torch.equal(bits_of(value), bits_of(expected[key])), key   # bit for bit, -0.0 too
    assert "integer_weights" not in loaded_meta and loaded_meta["bits"] == bits


def test_compact_refuses_weights_off_their_grid(tmp_path, model):
    with pytest.raises(ValueError, match=r"features\.0\.weight is not on its 8-bit grid"):
        save_checkpoint(tmp_path / "compact.pt", model, compact=True, **META)
    assert not (tmp_path / "compact.pt").exists()
