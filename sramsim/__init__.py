"""sramsim: SRAM arrays, simulated low-voltage chips and their fault maps, and deploying torch models
on them (see docs/architecture.md).

The names below load on first use, so importing one light module (say :mod:`sramsim.registry`)
does not pull in numba or SCALE-SIM.
"""
from characterization.exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "sramsim.array": ("ArrayGeometry", "MemoryLayout"),
    "sramsim.faults": ("Chip", "DEFAULT_FAULT_MODEL", "FAULT_MODELS", "FaultMap", "load_fault_map"),
    "sramsim.memory": ("MemoryConfig",),
    "sramsim.storage": ("STORAGE_FORMATS",),
    "sramsim.deployment": ("Deployment", "deploy"),
    "sramsim.operating_point": ("OperatingPoint",),
    "sramsim.accounting": ("SystolicConfig", "count_macs", "create_network", "energy_saving",
                           "list_networks", "register_network", "weight_accesses", "weight_energy"),
})
