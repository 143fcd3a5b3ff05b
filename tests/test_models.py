"""Base models: paper parameter counts, width multiplier, registry, and the sramsim entry point."""
import subprocess
import sys

import pytest
import torch

from neuralfuse.models import create_model, list_models
from neuralfuse.registry import register_all

# Table 7 of the paper: width 1, 10 classes.
PAPER_PARAMS = {
    "resnet18": 11_173_962, "resnet50": 23_520_842,
    "vgg11": 9_231_114, "vgg16": 14_728_266, "vgg19": 20_040_522,
}
MODELS = sorted(PAPER_PARAMS)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_list_models():
    assert list_models() == MODELS


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_matches_paper(name):
    assert n_params(create_model(name)) == PAPER_PARAMS[name]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("size", [32, 48])
def test_logits_shape_for_any_input_size(name, size):
    model = create_model(name, num_classes=7, width=0.25).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, size, size)).shape == (2, 7)


@pytest.mark.parametrize("name, head_inputs", [("resnet18", 512), ("resnet50", 2048), ("vgg16", 512)])
def test_width_scales_every_layer(name, head_inputs):
    full, half = create_model(name), create_model(name, width=0.5)
    convs = [m for m in half.modules() if isinstance(m, torch.nn.Conv2d)]
    full_convs = [m for m in full.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels * 2 for c in convs] == [c.out_channels for c in full_convs]
    assert full.classifier.in_features == head_inputs and half.classifier.in_features == head_inputs // 2
    assert 0.2 < n_params(half) / n_params(full) < 0.3  # conv weights scale as width²


def test_tiny_width_keeps_one_channel_and_runs():
    model = create_model("resnet18", width=0.001)
    assert min(m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)) == 1
    model(torch.zeros(2, 3, 32, 32)).sum().backward()


def test_lookup_ignores_case():
    assert n_params(create_model("VGG11")) == PAPER_PARAMS["vgg11"]


def test_unknown_name_lists_known_models():
    with pytest.raises(ValueError, match=r"'resnet34'.*resnet18.*vgg19"):
        create_model("resnet34")


@pytest.mark.parametrize("width", [0, -0.5, float("nan"), float("inf"), "1", True, None])
def test_bad_width_is_named(width):
    with pytest.raises(ValueError, match=rf"width={width!r}.*positive"):
        create_model("vgg11", width=width)


@pytest.mark.parametrize("num_classes", [0, -3, 2.0, "10"])
def test_bad_num_classes_is_named(num_classes):
    with pytest.raises(ValueError, match=rf"num_classes={num_classes!r}"):
        create_model("resnet18", num_classes=num_classes)


def test_register_all_hands_sramsim_every_model_and_network_generator():
    seen = {}
    register_all(lambda name, factory, kind: seen.setdefault(name, (factory, kind)))
    assert {n for n, (_, kind) in seen.items() if kind == "model"} == set(MODELS)
    assert {n for n, (_, kind) in seen.items() if kind == "generator"} == {
        "ConvL", "ConvS", "DeConvL", "DeConvS", "UNetL", "UNetS"}
    assert n_params(seen["vgg11"][0](num_classes=10, width=1.0)) == PAPER_PARAMS["vgg11"]
    assert seen["resnet18"][0](num_classes=3, width=0.25).classifier.out_features == 3
    assert type(seen["UNetS"][0]()).__name__ == "UNetS"


def test_entry_point_loads_in_a_fresh_interpreter():
    """sramsim resolves ``neuralfuse.registry:register_all`` without having imported neuralfuse,
    and loading it imports neither numba nor SCALE-SIM."""
    code = (
        "import sys\n"
        "from importlib.metadata import entry_points\n"
        "(ep,) = [e for e in entry_points(group='sramsim.models') if e.name == 'neuralfuse']\n"
        "names = []\n"
        "ep.load()(lambda name, factory, kind: names.append(name))\n"
        "print(len(names))\n"
        "print(sorted(m for m in ('numba', 'scalesim', 'ptflops') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["11", "[]"]

