"""Weight-memory read accesses of a network, one row per layer."""
from __future__ import annotations

from typing import Sequence

import pandas as pd
from torch import nn

from sramsim.accounting.config import SystolicConfig
from sramsim.accounting.engines import filter_reads
from sramsim.accounting.networks import create_network
from sramsim.accounting.topology import extract_topology

ACCESS_COLUMNS = ("layer", "kind", "in_shape", "out_shape", "ifmap_h", "ifmap_w", "filter_h", "filter_w",
           "channels", "filters", "stride_h", "stride_w", "groups", "ofmap_h", "ofmap_w", "macs",
           "filter_reads", "row_accesses")


def weight_accesses(model: nn.Module | str, input_shape: Sequence[int] = (3, 32, 32),
                    config: SystolicConfig = SystolicConfig(), *, engine: str = "analytic",
                    convention: str = "paper", use_cache: bool = True) -> pd.DataFrame:
    """Per-layer weight-SRAM reads of ``model`` (an nn.Module or a registered network name).

    Columns: ``layer`` (module name), ``kind`` (conv/deconv/linear), real ``in_shape`` and
    ``out_shape`` ("CxHxW"), the SCALE-SIM row (``ifmap_h``…``groups``, per group) and the output
    size SCALE-SIM derives from it (``ofmap_h``, ``ofmap_w``), the layer's weight ``macs``,
    ``filter_reads`` (SCALE-SIM's "SRAM Filter Reads": weight words) and ``row_accesses`` =
    filter_reads / ``config.words_per_row`` (reads of whole SRAM rows, each holding
    ``row_bits // weight_bits`` weights; the paper's T.W.M.A. is its sum). ``engine`` is
    "analytic" (closed form) or "scalesim" (the real package in-process, cached on disk);
    ``convention`` is "paper" or "exact" (see :mod:`sramsim.accounting.topology`).

    >>> df = weight_accesses(nn.Conv2d(3, 8, 3, padding=1), (3, 32, 32))
    >>> int(df.filter_reads.sum()), float(df.row_accesses.sum())
    (6912, 864.0)
    """
    if isinstance(model, str):
        model = create_network(model)
    layers = extract_topology(model, input_shape, convention)
    reads = filter_reads(layers, config, engine, use_cache=use_cache)
    rows = [(layer.name, layer.kind, _dims(layer.in_shape), _dims(layer.out_shape),
             layer.ifmap_h, layer.ifmap_w, layer.filter_h, layer.filter_w, layer.channels,
             layer.filters, layer.stride_h, layer.stride_w, layer.groups,
             layer.ofmap_h, layer.ofmap_w, layer.macs, int(n), n / config.words_per_row)
            for layer, n in zip(layers, reads)]
    df = pd.DataFrame(rows, columns=list(ACCESS_COLUMNS))
    df.attrs.update(config=config.to_dict(), engine=engine, convention=convention,
                    input_shape=tuple(input_shape))
    return df


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))
