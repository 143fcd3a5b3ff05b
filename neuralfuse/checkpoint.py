"""Checkpoints: a dict holding ``state_dict`` plus plain metadata, written atomically, read safely.

A base-model checkpoint carries what is needed to rebuild and check the model:

    {"format": "neuralfuse.base-model", "format_version": 1, "state_dict": {...},
     "arch": "resnet18", "width": 0.25, "num_classes": 10, "dataset": "default",
     "memory": {"bits": 8, "storage": "symmetric", ...}, ...}

(``memory`` is how the weights are stored, :class:`sramsim.MemoryConfig`; checkpoints written
before it hold a flat ``"bits"``: :meth:`sramsim.MemoryConfig.from_record` reads both.)

Files are read with ``torch.load(..., weights_only=True)``, so loading one never runs code, and a
missing, foreign or mismatching file is a clear error, never a silently random model.

    save_checkpoint("base.pt", model, arch="resnet18", width=0.25, num_classes=10, dataset="default")
    model, meta = load_base_model("base.pt", expect={"num_classes": 10})

A trained generator lives in its EOPM run directory (:mod:`neuralfuse.eopm`) as ``generator.pt``,
tied to its base model by :func:`model_fingerprint`; :func:`load_generator` reads it back.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from characterization.atomic import atomic_path
from neuralfuse.generators import create_generator
from neuralfuse.models import create_model
from neuralfuse.qat import quantized_layers
from sramsim.quant import dequantize, quantize

FORMAT_VERSION = 1
#: Version of base-model files that hold integer weights (``save_checkpoint(..., compact=True)``).
COMPACT_FORMAT_VERSION = 2
BASE_MODEL = "neuralfuse.base-model"
#: Resumable state of a base-model training run (see :mod:`neuralfuse.train_base`).
BASE_TRAINING_STATE = "neuralfuse.base-training-state"
#: A trained NeuralFuse generator and the resumable state of its EOPM run (see :mod:`neuralfuse.eopm`).
GENERATOR = "neuralfuse.generator"
EOPM_TRAINING_STATE = "neuralfuse.eopm-training-state"
KINDS = (BASE_MODEL, BASE_TRAINING_STATE, GENERATOR, EOPM_TRAINING_STATE)
#: Metadata every base-model checkpoint must carry: what create_model needs to rebuild it.
REQUIRED_META = ("arch", "width", "num_classes")
#: Files of an EOPM run directory: its record (settings, provenance) and, when done, the generator.
RUN_RECORD, GENERATOR_FILE = "config.json", "generator.pt"

PathLike = str | os.PathLike


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint, or one that does not match what was expected."""


def atomic_save(obj: Any, path: PathLike) -> Path:
    """``torch.save`` ``obj`` to ``path`` through a temporary file and ``os.replace``; return path."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def _check_plain(value: Any, where: str) -> None:
    """Raise TypeError unless ``value`` is something ``torch.load(weights_only=True)`` reads back."""
    if value is None or isinstance(value, (bool, int, float, str, torch.Tensor)):
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"checkpoint metadata {where} has a key of type {type(key).__name__}")
            _check_plain(item, f"{where}[{key!r}]")
        return
    raise TypeError(f"checkpoint metadata {where} is a {type(value).__name__}: use plain Python "
                    "values (None, bool, int, float, str, list, tuple, dict) or tensors")


def make_payload(kind: str, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict:
    """The dict saved for a checkpoint of ``kind``: format tags, metadata and ``state_dict``."""
    reserved = {"format", "format_version", "state_dict"} & meta.keys()
    if reserved:
        raise ValueError(f"metadata may not set {sorted(reserved)}: the checkpoint sets them")
    for key, value in meta.items():
        _check_plain(value, key)
    return {"format": kind, "format_version": FORMAT_VERSION, **meta, "state_dict": state_dict}


def save_checkpoint(path: PathLike, model: nn.Module, *, compact: bool = False, **meta: Any) -> Path:
    """Save ``model`` as a base-model checkpoint at ``path`` (atomically); return the path.

    ``meta`` must include ``arch``, ``width`` and ``num_classes`` (what
    ``create_model`` needs) and may add any plain values (dataset, memory, metrics, ...). A model
    still under quantization-aware training must be exported first
    (:func:`neuralfuse.qat.export_quantized`), so the file holds plain weights on their grid.

    ``compact=True`` stores each conv/linear weight as its integers (int8) and per-tensor scale
    instead of float32, a quarter of the size; :func:`load_base_model` rebuilds weights that are
    bit-identical to the saved ones. It needs weights exactly on their grid of the memory config's
    bit width (a QAT-exported model) and refuses others, naming the first tensor that is not.
    """
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise ValueError(f"save_checkpoint needs metadata {missing} to rebuild the model later")
    if any(parametrize.is_parametrized(m) for m in model.modules()):
        raise ValueError("model still has parametrizations (QAT enabled?): "
                         "call neuralfuse.qat.export_quantized(model) before saving it")
    state = model.state_dict()
    if not compact:
        return atomic_save(make_payload(BASE_MODEL, state, meta), path)
    from sramsim.memory import MemoryConfig   # (imports numba: only for compact files)

    integers = _integer_weights(model, state, MemoryConfig.from_record(meta).bits)
    payload = make_payload(BASE_MODEL, {k: v for k, v in state.items() if k not in integers}, meta)
    return atomic_save({**payload, "format_version": COMPACT_FORMAT_VERSION, "integer_weights": integers}, path)


def _integer_weights(model: nn.Module, state: dict[str, torch.Tensor], bits: int
                     ) -> dict[str, dict[str, torch.Tensor]]:
    """{state key: {"q": int8 integers, "scale": 0-dim scale}} of every quantized layer's weight."""
    integers = {}
    for name, _ in quantized_layers(model):
        key = f"{name}.weight" if name else "weight"
        weight = state[key]
        q, scale = quantize(weight, bits)
        if not torch.equal(dequantize(q, scale, weight.dtype), weight):
            raise ValueError(f"{key} is not on its {bits}-bit grid, so compact=True would change it: "
                             "save a QAT-exported model (neuralfuse.qat.export_quantized), or compact=False")
        integers[key] = {"q": q, "scale": scale.to(weight.dtype)}
    return integers


def read_checkpoint(path: PathLike, kind: str = BASE_MODEL) -> dict[str, Any]:
    """Load and check the checkpoint dict at ``path``, which must be of ``kind`` (see KINDS)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types, with internal messages, for foreign files
        raise CheckpointError(f"{str(path)!r} is not a checkpoint written by torch.save (a .pt file "
                              "from neuralfuse train-base or train), or it is damaged") from err
    found = payload.get("format") if isinstance(payload, dict) else None
    if found not in KINDS:
        raise CheckpointError(f"{str(path)!r} is not a neuralfuse checkpoint (no known 'format' tag)")
    if found != kind:
        raise CheckpointError(f"{str(path)!r} is a {found} checkpoint, not a {kind} checkpoint")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > COMPACT_FORMAT_VERSION:
        raise CheckpointError(f"{str(path)!r} has format version {version!r}; this version of "
                              f"neuralfuse reads versions up to {COMPACT_FORMAT_VERSION}")
    if not isinstance(payload.get("state_dict"), dict):
        raise CheckpointError(f"{str(path)!r} has no state_dict")
    return payload


def check_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor], what: str) -> None:
    """Raise CheckpointError naming missing, unexpected or mis-shaped entries of ``state_dict``."""
    expected = model.state_dict()
    problems = [f"missing {k}" for k in expected if k not in state_dict]
    problems += [f"unexpected {k}" for k in state_dict if k not in expected]
    problems += [f"{k} has shape {tuple(state_dict[k].shape)}, the model needs {tuple(v.shape)}"
                 for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise CheckpointError(f"{what}: weights do not fit the model: {'; '.join(problems[:3])}{more}")


def load_base_model(path: PathLike, *, expect: dict[str, Any] | None = None
                    ) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the base model saved at ``path``; return (model in eval mode, metadata).

    ``expect`` maps metadata keys to required values, e.g. ``{"arch": "resnet18",
    "num_classes": 10}``; any difference raises a CheckpointError naming both values.
    """
    payload = read_checkpoint(path, BASE_MODEL)
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    name = str(Path(path))
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise CheckpointError(f"{name!r} lacks metadata {missing}, so its model cannot be rebuilt")
    norm = meta.get("norm", "batch")   # checkpoints written before the norm option hold BatchNorm
    for key, wanted in (expect or {}).items():
        found = norm if key == "norm" else meta.get(key)
        if found != wanted:
            raise CheckpointError(f"{name!r} holds a model with {key}={found!r}, "
                                  f"but {key}={wanted!r} was expected")
    try:
        model = create_model(meta["arch"], num_classes=meta["num_classes"], width=meta["width"], norm=norm)
    except ValueError as err:
        raise CheckpointError(f"{name!r}: cannot rebuild its model: {err}") from err
    state = dict(payload["state_dict"])
    for key, stored in payload.get("integer_weights", {}).items():
        state[key] = dequantize(stored["q"], stored["scale"], stored["scale"].dtype)
    check_state_dict(model, state, name)
    model.load_state_dict(state)
    meta.pop("integer_weights", None)
    return model.eval(), meta


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 of a model's state (names, dtypes, shapes, values): identifies the exact weights."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def recorded_base(run_dir: PathLike) -> str | None:
    """The base-model file recorded in ``run_dir``'s record (``config.json``) if that file still
    exists, else None."""
    record = Path(run_dir) / RUN_RECORD
    if not record.is_file():
        return None
    base = json.loads(record.read_text()).get("provenance", {}).get("base")
    return base if base and Path(base).is_file() else None


def load_generator(run_dir: PathLike, *, base: nn.Module | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The trained generator of the EOPM run directory ``run_dir`` (eval mode) and its metadata.

    With ``base``, also check that the generator was trained for exactly that base model (same
    weights); a mismatch raises a CheckpointError. Missing directories or an unfinished run raise
    FileNotFoundError naming what is missing.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"run directory {str(run)!r} does not exist")
    if not (run / GENERATOR_FILE).is_file():
        hint = ("training has not finished: repeat the train command to resume it"
                if (run / RUN_RECORD).is_file() else "it is not a training run directory")
        raise FileNotFoundError(f"{str(run)!r} has no {GENERATOR_FILE} ({hint})")
    payload = read_checkpoint(run / GENERATOR_FILE, GENERATOR)
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    generator = create_generator(meta["generator"], input_shape=tuple(meta["input_shape"]))
    generator.load_state_dict(payload["state_dict"])
    if base is not None and model_fingerprint(base) != meta["base_fingerprint"]:
        raise CheckpointError(f"the generator in {str(run)!r} was trained for another base model "
                              "(its weights differ from the ones given)")
    return generator.eval(), meta
