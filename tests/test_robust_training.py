"""Robust base models: GroupNorm, weight clipping and random bit-error training (RandBET)."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from neuralfuse.checkpoint import load_base_model, model_fingerprint
from neuralfuse.chips import TRAIN_SEED_BASE, training_chips, validation_chips
from neuralfuse.cli import main
from neuralfuse.clipping import clip_stored_weights
from neuralfuse.models import create_model
from neuralfuse.models.norm import OffsetGroupNorm, group_count
from neuralfuse.qat import enable_qat, quantized_layers
from neuralfuse.randbet import RandBET
from neuralfuse.train_base import BaseTrainer, TrainBaseConfig
from sramsim import Deployment, MemoryConfig

TINY = TrainBaseConfig(model="vgg11", width=0.0625, batch_size=32, limit_batches=2, epochs=2, seed=3,
                       norm="group", clip=0.05)
RANDBET = dataclasses.replace(TINY, randbet_ber=0.01, randbet_threshold=10.0, val_size=64)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def stored_weights(model: nn.Module) -> list[torch.Tensor]:
    """The weights the faulty memory holds, as the (possibly fake-quantized) model computes with."""
    return [layer.weight.detach() for _, layer in quantized_layers(model)]


def tiny_randbet(threshold: float = 10.0, grad_clip: float = 0.05, **options) -> tuple[nn.Module, RandBET]:
    torch.manual_seed(0)
    model = enable_qat(create_model("vgg11", width=0.0625, norm="group")).train()
    shadow = create_model("vgg11", width=0.0625, norm="group")
    return model, RandBET(model, shadow, ber=0.02, seed=7, threshold=threshold, grad_clip=grad_clip, **options)


def test_randbet_deploys_in_the_chosen_storage_format_and_robust_weights_stay_in_range():
    model, randbet = tiny_randbet(memory=MemoryConfig(storage="robust"))
    deployment = randbet.deployment()
    assert deployment.memory.storage == "robust" and deployment.storage.name == "robust"
    ranges = [(w.min(), w.max()) for w in stored_weights(model)]
    with deployment.at(ber=0.3, chip=1) as perturbed:   # a flipped bit cannot leave a layer's range
        for (low, high), (_, layer) in zip(ranges, quantized_layers(perturbed)):
            assert low - 1e-6 <= layer.weight.min() and layer.weight.max() <= high + 1e-6


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(16, 3, 32, 32, generator=generator) * 2 - 1, torch.randint(0, 10, (16,), generator=generator)


def clean_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    return loss.item(), [p.grad.clone() for p in model.parameters()]


# -- GroupNorm ---------------------------------------------------------------------------------

def test_group_norm_scale_is_one_plus_its_parameter():
    layer = OffsetGroupNorm(group_count(64), 64)
    assert layer.num_groups == 32 and group_count(4) == 4 and group_count(19) == 1
    x = torch.randn(2, 64, 5, 5)
    assert torch.equal(layer.weight, torch.zeros(64))     # weight decay pulls the scale to 1
    torch.testing.assert_close(layer(x), nn.GroupNorm(32, 64)(x))
    with torch.no_grad():
        layer.weight.fill_(0.5)
    torch.testing.assert_close(layer(x), 1.5 * nn.GroupNorm(32, 64)(x))


@pytest.mark.parametrize("name", ["vgg11", "resnet18"])
def test_group_norm_models_have_no_batch_norm_and_the_same_parameter_count(name):
    batch_norm, group_norm = create_model(name), create_model(name, norm="group")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in group_norm.modules())
    assert sum(isinstance(m, OffsetGroupNorm) for m in group_norm.modules()) == \
        sum(isinstance(m, nn.BatchNorm2d) for m in batch_norm.modules())
    assert sum(p.numel() for p in group_norm.parameters()) == sum(p.numel() for p in batch_norm.parameters())


def test_group_norm_model_trains_saves_and_loads_bit_identically(tmp_path):
    trainer = BaseTrainer(dataclasses.replace(TINY, epochs=1), tmp_path / "gn.pt", progress=False,
                          compact=True)
    meta = trainer.run()
    model, loaded = load_base_model(tmp_path / "gn.pt")
    assert (meta["norm"], loaded["norm"], loaded["clip"]) == ("group", "group", 0.05)
    assert any(isinstance(m, OffsetGroupNorm) for m in model.modules())
    assert same_weights(model, trainer.model)
    x = batch()[0]
    assert torch.equal(model(x), trainer.model.eval()(x))


# -- clipping ----------------------------------------------------------------------------------

def test_clipping_keeps_every_stored_weight_within_wmax_after_every_step(tmp_path):
    wmax = torch.tensor(TINY.clip)
    assert max(w.abs().max() for w in stored_weights(create_model("vgg11", width=0.0625))) > wmax
    trainer = BaseTrainer(TINY, tmp_path / "clip.pt", progress=False)
    checked = []

    def check(epoch: int, step: int, loss: float) -> None:
        checked.append(all(w.abs().max() <= wmax for w in stored_weights(trainer.model)))

    trainer.run(check)
    assert checked == [True] * (TINY.epochs * TINY.limit_batches)
    model, _ = load_base_model(tmp_path / "clip.pt")
    assert all(w.abs().max() <= wmax for w in stored_weights(model))
    assert max(w.abs().max() for w in stored_weights(model)) > wmax / 2   # not clipped to nothing


def test_clip_stored_weights_leaves_other_parameters_alone():
    model = create_model("vgg11", width=0.0625, norm="group")
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    clip_stored_weights(model, 0.1)
    for name, p in model.named_parameters():
        expected = torch.tensor(0.1) if name.endswith(".weight") and p.dim() > 1 else torch.tensor(1.0)
        assert torch.all(p == expected), name


# -- RandBET -----------------------------------------------------------------------------------

def test_randbet_step_uses_this_steps_training_chip_and_clamps_the_perturbed_gradient():
    model, randbet = tiny_randbet(grad_clip=1e-4)
    x, y = batch()
    loss, clean = clean_gradients(model, x, y)
    perturbed = randbet.step(x, y, loss, nn.functional.cross_entropy, epoch=2, step=5)
    assert perturbed is not None and perturbed != pytest.approx(loss)
    assert randbet.chip == training_chips(7, 2, 5, 1)[0] >= TRAIN_SEED_BASE
    # what was added to each clean gradient (up to float rounding of the average)
    added = [(2 * p.grad.double() - g.double()).abs().max().item() for p, g in zip(model.parameters(), clean)]
    assert max(added) == pytest.approx(1e-4, rel=1e-3)   # the clamp was hit and holds
    assert all(torch.equal(w, s) for w, s in zip(stored_weights(model), stored_weights(randbet.shadow)))


def test_randbet_perturbed_gradient_is_the_deployed_models_gradient():
    model, randbet = tiny_randbet(grad_clip=1e3)   # no clamping
    x, y = batch()
    loss, clean = clean_gradients(model, x, y)
    randbet.step(x, y, loss, nn.functional.cross_entropy, epoch=0, step=0)
    expected = create_model("vgg11", width=0.0625, norm="group").train()
    expected.load_state_dict(randbet.sync().state_dict())
    with Deployment(expected, bits=8).at(ber=0.02, chip=training_chips(7, 0, 0, 1)[0]) as deployed:
        nn.functional.cross_entropy(deployed(x), y).backward()
    grads = {name: p.grad for name, p in expected.named_parameters()}
    for (name, p), g in zip(model.named_parameters(), clean):
        e = grads[name.replace(".parametrizations.weight.original", ".weight")]
        torch.testing.assert_close(p.grad, (g + e) / 2, msg=name)


def test_randbet_stays_off_while_the_clean_loss_is_at_or_above_the_threshold():
    model, randbet = tiny_randbet(threshold=1.75)
    x, y = batch()
    _, clean = clean_gradients(model, x, y)
    for loss in (1.75, 2.3):
        assert randbet.step(x, y, loss, nn.functional.cross_entropy, epoch=0, step=0) is None
    assert randbet.chip is None
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), clean))
    assert randbet.step(x, y, 1.74, nn.functional.cross_entropy, epoch=0, step=0) is not None


def test_randbet_training_draws_training_chips_and_validates_on_validation_chips(tmp_path, monkeypatch):
    chips = []
    at = Deployment.at

    def spy(self, *args, chip, **kwargs):
        chips.append(chip)
        return at(self, *args, chip=chip, **kwargs)

    monkeypatch.setattr(Deployment, "at", spy)
    meta = BaseTrainer(dataclasses.replace(RANDBET, epochs=1), tmp_path / "rb.pt", progress=False).run()
    steps = [training_chips(RANDBET.seed, 0, s, 1)[0] for s in range(RANDBET.limit_batches)]
    assert chips == steps + validation_chips(3)
    row = meta["metrics"][0]
    assert row["randbet_on"] == 1.0 and row["perturbed_loss"] > 0 and 0 <= row["val_pa"] <= 1


def test_randbet_is_off_in_every_step_below_the_threshold(tmp_path):
    config = dataclasses.replace(RANDBET, epochs=1, randbet_threshold=0.0)
    row = BaseTrainer(config, tmp_path / "off.pt", progress=False).run()["metrics"][0]
    assert row["randbet_on"] == 0.0 and row["perturbed_loss"] is None


# -- bad values --------------------------------------------------------------------------------

@pytest.mark.parametrize("option, value, shown", [("--clip", "0", "0"), ("--clip", "-0.1", "-0.1"),
                                                  ("--randbet-ber", "0.7", "0.7"),
                                                  ("--norm", "layer", "layer")])
def test_train_base_refuses_bad_robustness_options_in_one_line(tmp_path, option, value, shown):
    args = ["train-base", "--model", "vgg11", "--width", "0.0625", option, value, "-o", str(tmp_path / "x.pt")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("Error:") and shown in error and "Traceback" not in result.output
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("field, value", [("clip", 0.0), ("randbet_ber", 0.7), ("randbet_ber", 0.0),
                                          ("norm", "layer"), ("randbet_grad_clip", 0.0)])
def test_config_rejects_bad_robustness_values_by_name(field, value):
    with pytest.raises(ValueError, match=f"{field}={value!r}"):
        TrainBaseConfig(**{field: value})


def test_train_base_command_trains_with_randbet_and_reports_the_validation_pa(tmp_path):
    out = tmp_path / "rb.pt"
    args = ["train-base", "--model", "vgg11", "--width", "0.0625", "--batch-size", "32", "--limit-batches", "1",
            "--epochs", "1", "--val-size", "64", "--norm", "group", "--clip", "0.1", "--randbet-ber", "0.01",
            "--randbet-threshold", "10", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "bit errors on in 100% of steps, validation PA" in result.output
    _, meta = load_base_model(out)
    assert (meta["norm"], meta["clip"], meta["randbet_ber"]) == ("group", 0.1, 0.01)
    assert meta["config"]["randbet_threshold"] == 10.0 and meta["metrics"][0]["randbet_on"] == 1.0


# -- fine-tuning from a saved model ------------------------------------------------------------

def test_fine_tuning_starts_from_the_initial_models_weights_and_records_it(tmp_path):
    first = BaseTrainer(dataclasses.replace(TINY, epochs=1), tmp_path / "clip.pt", progress=False)
    first.run()
    init, _ = load_base_model(tmp_path / "clip.pt")
    # one step at a vanishing learning rate: the fine-tuned model is the initial one, up to rounding
    config = dataclasses.replace(TINY, epochs=1, limit_batches=1, lr=1e-12, init_base=str(tmp_path / "clip.pt"))
    meta = BaseTrainer(config, tmp_path / "tuned.pt", progress=False).run()
    tuned, _ = load_base_model(tmp_path / "tuned.pt")
    assert same_weights(tuned, init)
    assert meta["init_fingerprint"] == model_fingerprint(init)
    fresh = BaseTrainer(dataclasses.replace(config, init_base=None), tmp_path / "fresh.pt", progress=False).run()
    assert fresh["init_fingerprint"] is None
    assert not same_weights(load_base_model(tmp_path / "fresh.pt")[0], init)


def test_fine_tuning_refuses_a_model_of_another_shape_before_writing(tmp_path):
    BaseTrainer(dataclasses.replace(TINY, epochs=1, limit_batches=1), tmp_path / "gn.pt", progress=False).run()
    for change, named in ((dict(norm="batch"), "norm='group'"), (dict(width=0.125), "width=0.0625")):
        config = dataclasses.replace(TINY, init_base=str(tmp_path / "gn.pt"), **change)
        with pytest.raises(ValueError, match=named):
            BaseTrainer(config, tmp_path / "out.pt", progress=False)
        assert not (tmp_path / "out.pt").exists() and not (tmp_path / "out.pt.partial").exists()
    args = ["train-base", "--model", "vgg11", "--width", "0.0625", "--init-base", str(tmp_path / "gn.pt"),
            "-o", str(tmp_path / "out.pt")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "norm='group'" in result.output.splitlines()[-1]
