"""Weight-memory access accounting (SCALE-SIM topologies of torch models) and energy.

    >>> float(weight_accesses("resnet18", (3, 32, 32)).row_accesses.sum())   # the paper's T.W.M.A.
    2755968.0
    >>> round(energy_saving(2_755_968, 320_256, 0.833), 3)                   # Table 2: 19.0%
    0.19
"""
from sramsim.accounting.accesses import weight_accesses
from sramsim.accounting.config import DATAFLOWS, SystolicConfig
from sramsim.accounting.energy import (count_macs, energy_report, energy_saving, load_technology,
                                       operating_voltage, weight_energy)
from sramsim.accounting.engines import ENGINES, filter_reads
from sramsim.accounting.networks import (NETWORK_KINDS, create_network, list_networks, network_kind,
                                         register_network)
from sramsim.accounting.topology import (CONVENTIONS, Layer, extract_topology,
                                         write_scalesim_topology)

__all__ = ["weight_accesses", "SystolicConfig", "DATAFLOWS", "count_macs", "energy_report",
           "energy_saving", "load_technology", "operating_voltage", "weight_energy", "ENGINES",
           "filter_reads", "NETWORK_KINDS", "create_network",
           "list_networks", "network_kind", "register_network", "CONVENTIONS", "Layer",
           "extract_topology", "write_scalesim_topology"]
