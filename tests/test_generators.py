"""NeuralFuse generators: paper parameter counts, F(x) = clamp(x + G(x), -1, 1), shapes, registry."""
import pytest
import torch

from neuralfuse.generators import InputTransform, create_generator, list_generators
from neuralfuse.models import create_model
from sramsim.accounting import create_network
from sramsim.registry import UnknownNetworkError

# Table 7 of the paper, for 32×32×3 inputs.
PAPER_PARAMS = {
    "ConvL": 723_273, "ConvS": 113_187, "DeConvL": 647_785,
    "DeConvS": 156_777, "UNetL": 482_771, "UNetS": 121_195,
}
NETWORKS = sorted(PAPER_PARAMS)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_list_generators_names_every_family_and_the_baseline():
    assert sorted(list_generators()) == sorted([*NETWORKS, "UIP"])


@pytest.mark.parametrize("name", NETWORKS)
def test_parameter_count_matches_paper_and_lives_in_net(name):
    generator = create_generator(name)
    assert isinstance(generator, InputTransform)
    assert n_params(generator) == n_params(generator.net) == PAPER_PARAMS[name]


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("size, batch", [(32, 2), (64, 2), (224, 1)])
def test_output_keeps_shape_and_stays_in_range(name, size, batch):
    torch.manual_seed(0)
    generator = create_generator(name).eval()
    x = torch.rand(batch, 3, size, size) * 2 - 1
    with torch.no_grad():
        y = generator(x)
    assert y.shape == x.shape
    assert y.min() >= -1 and y.max() <= 1


@pytest.mark.parametrize("name", [*NETWORKS, "UIP"])
def test_forward_is_clamped_residual_of_net(name):
    torch.manual_seed(1)
    generator = create_generator(name, **({"input_shape": (3, 32, 32)} if name == "UIP" else {})).eval()
    with torch.no_grad():
        for p in generator.parameters():
            p.uniform_(-0.5, 0.5)
        x = torch.rand(3, 3, 32, 32) * 2.4 - 1.2  # some inputs outside [-1, 1] on purpose
        expected = torch.clamp(x + generator.net(x), -1, 1)
        torch.testing.assert_close(generator(x), expected)
        assert (generator(x).abs() == 1).any()


@pytest.mark.parametrize("name", NETWORKS)
def test_gradients_reach_every_parameter(name):
    torch.manual_seed(2)
    generator = create_generator(name).train()
    generator(torch.rand(2, 3, 32, 32) * 2 - 1).square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.parameters())


@pytest.mark.parametrize("shape", [(2, 3, 30, 32), (2, 3, 32, 36), (3, 32, 32)])
def test_sizes_the_networks_cannot_take_are_rejected(shape):
    with pytest.raises(ValueError, match="multiples of 8"):
        create_generator("UNetS")(torch.zeros(shape))


def test_lookup_ignores_case():
    assert type(create_generator("unetl")).__name__ == "UNetL"
    assert type(create_generator("DECONVS")).__name__ == "DeConvS"


def test_unknown_name_lists_known_generators():
    with pytest.raises(ValueError, match=r"'ConvM'.*ConvL.*UNetS"):
        create_generator("ConvM")


@pytest.mark.parametrize("create, what", [(create_model, "model"), (create_generator, "generator"),
                                          (create_network, "network")])
def test_every_registry_gives_the_same_error_for_an_unknown_name(create, what):
    with pytest.raises(UnknownNetworkError, match=f"unknown {what} 'nope'; known: "):
        create("nope")


def test_the_input_shape_reaches_only_generators_that_need_it():
    assert create_generator("UIP", input_shape=(3, 8, 8)).input_shape == (3, 8, 8)
    assert type(create_generator("UNetS", input_shape=(3, 8, 8))).__name__ == "UNetS"


def test_uip_is_a_trainable_tanh_perturbation_starting_at_identity():
    uip = create_generator("UIP", input_shape=(3, 8, 16))
    assert n_params(uip) == n_params(uip.net) == 3 * 8 * 16
    x = torch.rand(4, 3, 8, 16) * 2 - 1
    torch.testing.assert_close(uip(x), x)  # U = 0, tanh(U) = 0
    uip(x).sum().backward()
    (u,) = uip.parameters()
    assert u.grad is not None and u.grad.shape == (3, 8, 16)
    with torch.no_grad():
        u.fill_(100.0)
    torch.testing.assert_close(uip(x), torch.clamp(x + 1, -1, 1))  # tanh(U) = 1 added to every input


def test_uip_rejects_inputs_of_another_shape():
    with pytest.raises(ValueError, match=r"\(2, 3, 32, 32\)"):
        create_generator("UIP", input_shape=(3, 16, 16))(torch.zeros(2, 3, 32, 32))


@pytest.mark.parametrize("bad", [(3, 32), (3, 0, 32), (3, 32.0, 32), "3x32x32"])
def test_uip_rejects_bad_input_shape(bad):
    with pytest.raises(ValueError, match="input_shape"):
        create_generator("UIP", input_shape=bad)


def test_uip_needs_an_input_shape():
    with pytest.raises(TypeError, match="input_shape"):
        create_generator("UIP")


def test_same_seed_builds_the_same_generator():
    def build():
        torch.manual_seed(3)
        return create_generator("ConvS").state_dict()

    first, second = build(), build()
    assert all(torch.equal(first[k], second[k]) for k in first)
