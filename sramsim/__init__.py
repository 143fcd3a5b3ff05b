"""sramsim: SRAM arrays, simulated low-voltage chips and their fault maps, and deploying torch models
on them (see docs/architecture.md).

Note: ``sramsim.deploy`` is the function :func:`sramsim.deploy.deploy`; the module stays importable
as ``from sramsim.deploy import ...``.
"""
from sramsim.accounting import (SystolicConfig, count_macs, create_network, energy_saving,
                                list_networks, register_network, weight_accesses, weight_energy)
from sramsim.array import ArrayGeometry, MemoryLayout
from sramsim.deploy import Deployment, deploy
from sramsim.faults import FAULT_MODELS, Chip, FaultMap
