"""The committed CPU-scale reference: base model and best UNetL generator do what reference/ says."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from neuralfuse.checkpoint import load_base_model, load_generator, model_fingerprint
from neuralfuse.data import fixed_subset, load_dataset
from neuralfuse.evaluation import evaluate
from sramsim import OperatingPoint

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
BEST = REFERENCE / "neuralfuse" / "unetl-ft-cos-lam2"


@pytest.fixture(scope="module")
def reference():
    base, _ = load_base_model(REFERENCE / "resnet18-w025-cifar10.pt")
    generator, trained = load_generator(BEST, base=base)  # checks the pairing
    return base, generator, trained


def test_the_reference_generator_recovers_accuracy_on_unseen_chips_and_images(reference):
    base, generator, trained = reference
    assert (trained["generator"], trained["ber"], trained["fault_model"]) == ("UNetL", 0.03, "stuck-at")
    images = fixed_subset(load_dataset("default", split="test"), 500)  # CIFAR-10 test images
    result = evaluate(base, images, point=OperatingPoint.resolve(ber=0.03), generator=generator, chips=2,
                      latency_repeats=1)
    assert result["without_nf"]["ca"] > 80  # 86.46% on the full test split
    assert result["with_nf"]["ca"] > result["without_nf"]["ca"] - 8  # -4.4 points on the full test split
    gains = [b - a for a, b in zip(result["without_nf"]["pa_per_chip"], result["with_nf"]["pa_per_chip"])]
    assert min(gains) > 10  # 16.6-28.4 points per chip on the full test split (evaluation JSON)


@pytest.mark.parametrize("path", sorted((REFERENCE / "neuralfuse").glob("*/evaluation-ber0.03-*.json")),
                         ids=lambda p: p.parent.name)
def test_the_recorded_evaluations_are_consistent(path):
    saved = json.loads(path.read_text())
    baseline = json.loads((REFERENCE / "eval-ber0.03.json").read_text())
    if saved["chips"] == baseline["chips"]:
        assert saved["without_nf"]["pa_per_chip"] == baseline["without_nf"]["pa_per_chip"]  # same faults
    else:  # a re-evaluation on chips the run was never compared on
        assert not set(saved["chips"]) & set(baseline["chips"]) and saved["without_nf"]["ca"] == baseline["without_nf"]["ca"]
    assert saved["rp"] == pytest.approx(saved["with_nf"]["pa_mean"] - saved["without_nf"]["pa_mean"])


def test_the_compact_vgg11_loads_bit_identical_to_the_trained_model():
    model, meta = load_base_model(REFERENCE / "vgg11-cifar10.pt")
    assert (meta["arch"], meta["width"], meta["split"]) == ("vgg11", 1.0, {"val_size": 5000, "seed": 0})
    assert sum(p.numel() for p in model.parameters()) == 9_231_114
    assert model_fingerprint(model) == meta["trained_fingerprint"]
