"""sramsim: SRAM arrays, simulated low-voltage chips and their fault maps, and deploying torch models
on them (see docs/architecture.md).
"""
from sramsim.accounting import (SystolicConfig, count_macs, create_network, energy_saving,
                                list_networks, register_network, weight_accesses, weight_energy)
from sramsim.array import ArrayGeometry, MemoryLayout
from sramsim.deployment import Deployment, deploy
from sramsim.faults import FAULT_MODELS, Chip, FaultMap
from sramsim.operating_point import OperatingPoint

__all__ = [
    "ArrayGeometry", "Chip", "Deployment", "FAULT_MODELS", "FaultMap", "MemoryLayout",
    "OperatingPoint", "SystolicConfig", "count_macs", "create_network", "deploy", "energy_saving",
    "list_networks", "register_network", "weight_accesses", "weight_energy",
]
