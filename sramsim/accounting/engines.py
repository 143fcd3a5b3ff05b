"""Two ways to count SCALE-SIM's "SRAM Filter Reads" of a topology, proven equal by the tests.

``"analytic"`` — closed forms of what SCALE-SIM 3.0.0's compute model counts (one read per weight
word fed to the array, per fold). With P = output pixels (SCALE-SIM's output size), W = filter
window (Fh·Fw·C) and K = filters, per group:

* output stationary: ``ceil(P / array_rows) · W · K`` (the filters are re-streamed for every
  fold of output pixels over the array's rows);
* weight stationary: ``W · K`` (every weight is loaded into the array once);
* input stationary: ``ceil(P / array_cols) · W · K``.

``"scalesim"`` — the real ``scalesim`` package driven in-process: per layer its operand matrices
and its systolic compute object are built and the filter demand it derives is counted; the
memory simulation (cycles, DRAM traffic, traces) is not run and nothing is written. Its results
are cached on disk (see :mod:`sramsim.accounting.cache`).
"""
from __future__ import annotations

from importlib.metadata import version
from typing import Sequence

import numpy as np
from tqdm import tqdm

from sramsim.accounting import cache
from sramsim.accounting.config import SystolicConfig
from sramsim.accounting.topology import Layer

ENGINES = ("analytic", "scalesim")


def filter_reads(layers: Sequence[Layer], config: SystolicConfig = SystolicConfig(),
                 engine: str = "analytic", *, use_cache: bool = True) -> np.ndarray:
    """SCALE-SIM's filter-SRAM reads (weight words) of every layer, as an int64 array."""
    if engine == "analytic":
        return _analytic_reads(layers, config)
    if engine == "scalesim":
        return _scalesim_reads(layers, config, use_cache)
    raise ValueError(f"engine={engine!r} is unknown: use one of {', '.join(ENGINES)}")


def _analytic_reads(layers: Sequence[Layer], config: SystolicConfig) -> np.ndarray:
    def column(attr: str) -> np.ndarray:
        return np.fromiter((getattr(layer, attr) for layer in layers), np.int64, len(layers))

    pixels = column("ofmap_h") * column("ofmap_w")
    weights = column("filter_h") * column("filter_w") * column("channels") * column("filters")
    passes = {"os": -(-pixels // config.array_rows),
              "ws": np.ones_like(pixels),
              "is": -(-pixels // config.array_cols)}[config.dataflow]
    return passes * weights * column("groups")


def _scalesim_reads(layers: Sequence[Layer], config: SystolicConfig, use_cache: bool) -> np.ndarray:
    key = {"engine": f"scalesim-{version('scalesim')}-compute",
           "config": {k: getattr(config, k) for k in ("array_rows", "array_cols", "dataflow")},
           "topology": [[*layer.scalesim_row()[1:], layer.groups] for layer in layers]}
    if use_cache and (hit := cache.lookup(key)) is not None:
        return np.asarray(hit, dtype=np.int64)
    reads = np.array([_scalesim_layer_reads(layer, config)
                      for layer in tqdm(layers, desc="scalesim", unit="layer", leave=False,
                                        disable=None)], dtype=np.int64)
    if use_cache:
        cache.store(key, reads.tolist())
    return reads


def _scalesim_layer_reads(layer: Layer, config: SystolicConfig) -> int:
    """Filter reads of one layer from scalesim's own operand matrices and compute model."""
    # scalesim loads with the first layer it counts, so that importing the engines stays light
    from scalesim.compute.operand_matrix import operand_matrix
    from scalesim.compute.systolic_compute_is import systolic_compute_is
    from scalesim.compute.systolic_compute_os import systolic_compute_os
    from scalesim.compute.systolic_compute_ws import systolic_compute_ws
    from scalesim.layout_utils import layouts
    from scalesim.scale_config import scale_config
    from scalesim.topology_utils import topologies

    cfg = scale_config()
    cfg.update_from_list(["sramsim", config.array_rows, config.array_cols, config.ifmap_sram_kb,
                          config.filter_sram_kb, config.ofmap_sram_kb, 0, 10_000_000, 20_000_000,
                          config.dataflow, "CALC", [10]])  # 12 items: offsets, bandwidth mode, bw
    topo = topologies()
    topo.load_layer_params_from_list(layer.name, [*layer.scalesim_row(), 1, 1])  # 1:1 = dense
    topo.topo_calc_hyperparams()
    operands = operand_matrix()
    operands.set_params(config_obj=cfg, topoutil_obj=topo, layoututil_obj=layouts(), layer_id=0)
    _, ifmap = operands.get_ifmap_matrix()
    _, weights = operands.get_filter_matrix()
    _, ofmap = operands.get_ofmap_matrix()
    compute = {"os": systolic_compute_os, "ws": systolic_compute_ws,
               "is": systolic_compute_is}[config.dataflow]()
    compute.set_params(config_obj=cfg, ifmap_op_mat=ifmap, filter_op_mat=weights,
                       ofmap_op_mat=ofmap)
    compute.create_filter_demand_mat()  # counts the filter reads as it builds the demand
    return int(compute.filter_reads) * layer.groups
