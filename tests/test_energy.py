"""Weight-memory energy and the paper's energy saving (Eq. 6 and 7), MAC counts, energy CLI."""
from __future__ import annotations

import pytest
from click.testing import CliRunner
from torch import nn

import characterization
from sramsim.accounting import (count_macs, create_network, energy_report, energy_saving,
                                list_networks, weight_accesses, weight_energy)
from sramsim.cli import main

GENERATORS = ["ConvL", "ConvS", "DeConvL", "DeConvS", "UNetL", "UNetS"]
# Table 2 of the paper: energy saving (%) at the 1%-BER voltage, base model × generator.
TABLE2 = {
    "resnet18": [19.0, 29.1, 21.2, 27.5, 24.0, 28.9],
    "resnet50": [25.4, 29.9, 26.4, 29.2, 27.7, 29.9],
    "vgg11": [6.6, 27.5, 11.2, 24.1, 17.1, 27.2],
    "vgg16": [17.1, 28.9, 19.7, 27.0, 23.0, 28.7],
    # The paper prints 29.7 for VGG19 + ConvS; its own Table 6 (41,508 / 3,104,128) and the
    # 0.694 energy ratio that reproduce the other 29 cells to ±0.05 give 29.26, so 29.7 is a typo.
    "vgg19": [20.3, 29.26, 22.3, 27.8, 24.8, 29.1],
}
# Table 7 of the paper: MACs (ptflops), CIFAR-10 input.
TABLE7_MACS = {"resnet18": 557.14e6, "resnet50": 1.31e9, "vgg11": 153.5e6, "vgg16": 314.43e6,
               "vgg19": 399.47e6, "ConvL": 80.5e6, "ConvS": 10.34e6, "DeConvL": 64.69e6,
               "DeConvS": 22.44e6, "UNetL": 41.41e6, "UNetS": 10.58e6}


@pytest.fixture(scope="module")
def accesses():
    return {name: weight_accesses(name, (3, 32, 32)).row_accesses.sum()
            for name in [*TABLE2, *GENERATORS]}


def test_table2_from_accesses_and_the_characterization(accesses):
    # The paper's "1% at 0.83 Vmin" is the measured point 0.833 (1.115%, energy 0.6944 = 0.833^2);
    # the two-point calibration puts 1% exactly there, with the paper's energy 0.694.
    tech = characterization.load(characterization.DEFAULT_TECH)
    assert tech.energy_per_access(0.833) == pytest.approx(0.694, abs=5e-4)
    two_point = "14nm-512x64-two-point"
    for base, row in TABLE2.items():
        for generator, paper in zip(GENERATORS, row):
            saving = 100 * energy_saving(accesses[base], accesses[generator], 0.833)
            assert saving == pytest.approx(paper, abs=0.1), (base, generator)
            saving = 100 * energy_saving(accesses[base], accesses[generator], ber=0.01, tech=two_point)
            assert saving == pytest.approx(paper, abs=0.1), (base, generator)


@pytest.mark.parametrize("name", sorted(TABLE7_MACS))
def test_macs_match_table7(name):
    assert count_macs(create_network(name), (3, 32, 32)) == pytest.approx(TABLE7_MACS[name], rel=0.02)


def test_transposed_conv_macs_per_output_or_input_position():
    deconv = nn.ConvTranspose2d(4, 2, 2, stride=2, bias=False)
    assert count_macs(deconv, (4, 5, 5)) == 10 * 10 * 2 * 2 * 4 * 2
    assert count_macs(deconv, (4, 5, 5), transposed_conv="input") == 5 * 5 * 2 * 2 * 4 * 2
    with pytest.raises(ValueError, match="transposed_conv='both'"):
        count_macs(deconv, (4, 5, 5), transposed_conv="both")


def test_count_macs_leaves_the_model_in_its_mode():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    count_macs(model, (3, 8, 8))
    assert model.training and model[1].training


def test_eq6_terms():
    tech = characterization.load(characterization.DEFAULT_TECH)
    low = tech.energy_per_access(0.9)
    assert energy_saving(1000, 100, 0.9) == pytest.approx(1 - low - 0.1)
    assert energy_saving(1000, 0, 1.0) == pytest.approx(0.0)
    # A nominal voltage below Vmin makes the generator and the reference cheaper alike.
    nominal = tech.energy_per_access(0.95)
    assert energy_saving(1000, 100, 0.9, nominal_voltage=0.95) == pytest.approx(
        (1000 * nominal - 1000 * low - 100 * nominal) / (1000 * nominal))
    assert energy_saving(1000, 100, ber=0.01) == pytest.approx(
        energy_saving(1000, 100, tech.voltage_at_ber(0.01)))
    assert weight_energy(1000, 0.9) == pytest.approx(1000 * low)


@pytest.mark.parametrize("call, message", [
    (lambda: energy_saving(1000, 10), "exactly one of voltage and ber"),
    (lambda: energy_saving(1000, 10, 0.9, ber=0.01), "exactly one of voltage and ber"),
    (lambda: energy_saving(0, 10, 0.9), "base_cost=0 must be positive"),
    (lambda: energy_saving(1000, -1, 0.9), "generator_cost=-1"),
    (lambda: energy_saving(1000, 10, 0.5), "0.5"),
    (lambda: weight_energy(10, 0.9, tech="no-such-tech"), "no-such-tech"),
])
def test_bad_energy_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_custom_technology_file(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("# Technology mine: a test curve\n# v_range: 0.80 1.00\n"
                    "v_over_vmin,ber,energy,source\n0.80,1e-2,0.5,test\n1.00,1e-6,1.0,test\n")
    assert energy_saving(100, 10, 0.8, tech=path) == pytest.approx(1 - 0.5 - 0.1, abs=1e-6)


def test_energy_report_and_cli():
    report = energy_report("resnet18", "ConvL", ber=0.01)
    assert report["base_accesses"] == 2_755_968 and report["generator_accesses"] == 320_256
    energy = characterization.load(characterization.DEFAULT_TECH).energy_per_access(report["voltage"])
    assert report["voltage"] == pytest.approx(0.834, abs=1e-3) and energy == pytest.approx(0.6955, abs=1e-3)
    assert report["saving_accesses"] == pytest.approx(1 - energy - 320_256 / 2_755_968)
    assert 100 * report["saving_accesses"] == pytest.approx(18.8, abs=0.05)  # the paper's 19.0 at 0.694
    assert report["saving_macs"] == pytest.approx(
        1 - energy - report["generator_macs"] / report["base_macs"], abs=1e-3)
    result = CliRunner().invoke(main, ["energy", "--model", "resnet18", "--generator", "convl",
                                       "--ber", "0.01"])
    assert result.exit_code == 0, result.output
    assert "energy saving: 18.83% (Eq. 6, accesses)" in result.output


@pytest.mark.parametrize("args, hint", [
    (["--model", "resnet18", "--voltage", "0.5"], "0.5"),
    (["--model", "resnet18", "--voltage", "0.9", "--ber", "0.01"], "exactly one of --voltage and --ber"),
    (["--model", "resnet18", "--generator", "nope", "--voltage", "0.9"], "unknown network 'nope'"),
    (["--model", "resnet18", "--voltage", "0.9", "--tech", "nope"], "nope"),
])
def test_cli_energy_bad_input(args, hint):
    result = CliRunner().invoke(main, ["energy", *args])
    assert result.exit_code == 2
    error_lines = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(error_lines) == 1 and hint in error_lines[0], result.output


def test_every_registered_network_is_costed(accesses):
    assert set(list_networks()) == set(accesses)
