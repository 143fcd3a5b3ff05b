"""Weight-memory energy at a supply voltage, and the NeuralFuse paper's energy saving (Eq. 6, 7).

Energy = accesses × ``energy_per_access(v)`` of a characterized technology, in units of the energy
of one access at Vmin. With NeuralFuse, the base model's weights are read at a low voltage LV and
the generator's at a nominal, error-free voltage NV:

    ES = ( E_NV(base) − [ E_LV(base) + E_NV(generator) ] ) / E_NV(base)             (Eq. 6)

with E_V(net) = cost(net) × energy_per_access(V). The cost is the weight-memory row accesses
(Eq. 6) or the MAC count, assuming one access per MAC (Eq. 7). The paper takes NV = Vmin (energy
ratio 1) and LV = the voltage of 1% bit-error rate (energy ratio 0.694 on the 14nm arrays).
"""
from __future__ import annotations

import os
from functools import partial
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike
from ptflops import get_model_complexity_info
from ptflops.pytorch_ops import conv_flops_counter_hook
from torch import nn

import characterization
from characterization import DEFAULT_TECH, VoltageModel
from sramsim.accounting.accesses import weight_accesses
from sramsim.accounting.config import SystolicConfig
from sramsim.accounting.networks import create_network
from sramsim.accounting.topology import check_input_shape
from sramsim.layers import eval_mode
from sramsim.operating_point import check_voltage_or_ber

Technology = str | os.PathLike | VoltageModel
"""A technology name, the path of a technology file, or a loaded VoltageModel."""


def load_technology(tech: Technology = DEFAULT_TECH) -> VoltageModel:
    """``tech`` as a VoltageModel (names and paths go through ``characterization.load``)."""
    return tech if isinstance(tech, VoltageModel) else characterization.load(tech)


def operating_voltage(voltage: ArrayLike | None = None, *, ber: ArrayLike | None = None,
                      tech: Technology = DEFAULT_TECH) -> float | np.ndarray:
    """The supply voltage (× Vmin) given either itself or the bit-error rate it is to have."""
    check_voltage_or_ber(voltage, ber)
    return voltage if ber is None else load_technology(tech).voltage_at_ber(ber)


def weight_energy(accesses: ArrayLike, voltage: ArrayLike | None = None, *,
                  ber: ArrayLike | None = None,
                  tech: Technology = DEFAULT_TECH) -> float | np.ndarray:
    """Energy of ``accesses`` weight-memory reads at ``voltage`` (or at the voltage of ``ber``),
    in units of one access at Vmin.

    >>> weight_energy(1000, 1.0)
    1000.0
    """
    model = load_technology(tech)
    v = operating_voltage(voltage, ber=ber, tech=model)
    return _nonnegative(accesses, "accesses") * model.energy_per_access(v)


def energy_saving(base_cost: ArrayLike, generator_cost: ArrayLike,
                  voltage: ArrayLike | None = None, *, ber: ArrayLike | None = None,
                  nominal_voltage: float = 1.0,
                  tech: Technology = DEFAULT_TECH) -> float | np.ndarray:
    """Eq. 6 (costs = weight-memory accesses) or Eq. 7 (costs = MACs): the fraction of the base
    model's nominal-voltage energy saved by running it at ``voltage`` (or at the voltage of
    ``ber``) behind a generator that runs at ``nominal_voltage``.

    Paper's check, ResNet18 + ConvL at 1% BER (energy ratio 0.694 at the measured 0.833 Vmin):
    1 − 0.694 − 320,256 / 2,755,968 = 0.190.
    """
    model = load_technology(tech)
    base = _nonnegative(base_cost, "base_cost")
    if np.any(base <= 0):
        raise ValueError(f"base_cost={base_cost!r} must be positive")
    generator = _nonnegative(generator_cost, "generator_cost")
    e_nominal = model.energy_per_access(nominal_voltage)
    e_low = model.energy_per_access(operating_voltage(voltage, ber=ber, tech=model))
    return (base * e_nominal - (base * e_low + generator * e_nominal)) / (base * e_nominal)


def count_macs(model: nn.Module, input_shape: Sequence[int] = (3, 32, 32), *,
               transposed_conv: str = "output") -> int:
    """Multiply-accumulates of one inference as ptflops counts them (weight layers plus
    normalisation, activations, pooling; biases as one MAC per output). The model is left as it was.

    ``transposed_conv="output"`` (default) counts a transposed conv once per *output* position,
    as ptflops did from 2020 until 0.7.5 and so as the paper's Table 7 did (DeConvL 64.69M);
    ``"input"`` counts it once per input position, as ptflops 0.7.5 does (DeConvL 51.1M).
    """
    shape = check_input_shape(input_shape)
    if transposed_conv not in ("output", "input"):
        raise ValueError(f"transposed_conv={transposed_conv!r} is unknown: use 'output' or 'input'")
    hooks = {} if transposed_conv == "input" else {
        t: partial(conv_flops_counter_hook, transpose=False)
        for t in (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)}
    with eval_mode(model):  # ptflops switches modes; every module gets its own back
        macs, _ = get_model_complexity_info(model, shape, as_strings=False,
                                            print_per_layer_stat=False, verbose=False,
                                            custom_modules_hooks=hooks)
    return int(macs)


def energy_report(model: nn.Module | str, generator: nn.Module | str | None = None,
                  voltage: float | None = None, *, ber: float | None = None,
                  input_shape: Sequence[int] = (3, 32, 32), nominal_voltage: float = 1.0,
                  tech: Technology = DEFAULT_TECH, config: SystolicConfig = SystolicConfig(),
                  engine: str = "analytic", convention: str = "paper") -> dict:
    """Accesses, MACs, energies and both energy savings of ``model`` at a low voltage, behind
    ``generator`` at ``nominal_voltage`` (networks as modules or registered names).

    Energies are in units of one weight-memory access at Vmin; savings are fractions (Eq. 6 from
    row accesses, Eq. 7 from MACs). Without a generator, the saving is that of the voltage alone.
    """
    vmodel = load_technology(tech)
    v = float(operating_voltage(voltage, ber=ber, tech=vmodel))
    nets = {"base": model, "generator": generator}
    nets = {role: create_network(net) if isinstance(net, str) else net
            for role, net in nets.items() if net is not None}
    accesses = {role: float(weight_accesses(net, input_shape, config, engine=engine,
                                            convention=convention).row_accesses.sum())
                for role, net in nets.items()}
    macs = {role: count_macs(net, input_shape) for role, net in nets.items()}
    e_nominal, e_low = (float(vmodel.energy_per_access(x)) for x in (nominal_voltage, v))
    report = {"technology": vmodel.name, "voltage": v, "ber": float(vmodel.ber(v)),
              "nominal_voltage": float(nominal_voltage), "energy_ratio": e_low / e_nominal,
              "base_accesses": accesses["base"], "base_macs": macs["base"],
              "base_energy_nominal": accesses["base"] * e_nominal,
              "base_energy_low": accesses["base"] * e_low}
    if "generator" in nets:
        report.update(generator_accesses=accesses["generator"], generator_macs=macs["generator"],
                      generator_energy_nominal=accesses["generator"] * e_nominal)
    saving = dict(voltage=v, nominal_voltage=nominal_voltage, tech=vmodel)
    report["saving_accesses"] = float(energy_saving(
        accesses["base"], accesses.get("generator", 0.0), **saving))
    report["saving_macs"] = float(energy_saving(macs["base"], macs.get("generator", 0), **saving))
    return report


def _nonnegative(values: ArrayLike, name: str) -> np.ndarray | float:
    array = np.asarray(values, dtype=float)
    if np.any(~np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name}={values!r} must be finite and non-negative")
    return array if array.ndim else float(array)
