"""The systolic accelerator whose weight-memory reads are counted.

Defaults are the NeuralFuse paper's SCALE-SIM setting: an output-stationary 32×32 array with
256 KB of filter (weight) SRAM. SCALE-SIM counts filter reads in 1-byte words, one weight each;
the weight memory is built from SRAM arrays whose rows are ``row_bits`` wide, so one row access
delivers ``row_bits // weight_bits`` weights (64-bit rows of 8-bit weights: 8 weights a row).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from characterization.validation import check_scalar
from sramsim.quant import MAX_BITS, MIN_BITS

DATAFLOWS = ("os", "ws", "is")
"""SCALE-SIM's dataflows: output-, weight- and input-stationary."""


@dataclass(frozen=True)
class SystolicConfig:
    """A SCALE-SIM accelerator configuration plus the weight-memory row geometry.

    Only ``array_rows``, ``array_cols`` and ``dataflow`` change the filter-read count; the SRAM
    sizes change DRAM traffic and cycles in a full SCALE-SIM run and are kept for writing its
    config file.

    >>> SystolicConfig().words_per_row
    8
    """

    array_rows: int = 32
    array_cols: int = 32
    dataflow: str = "os"
    ifmap_sram_kb: int = 256
    filter_sram_kb: int = 256
    ofmap_sram_kb: int = 128
    row_bits: int = 64
    weight_bits: int = 8

    def __post_init__(self) -> None:
        for name in ("array_rows", "array_cols", "ifmap_sram_kb", "filter_sram_kb",
                     "ofmap_sram_kb", "row_bits"):
            check_scalar(getattr(self, name), name, int, min_val=1)
        check_scalar(self.weight_bits, "weight_bits", int, min_val=MIN_BITS, max_val=MAX_BITS)
        if self.dataflow not in DATAFLOWS:
            raise ValueError(f"dataflow={self.dataflow!r} is unknown: "
                             f"use one of {', '.join(DATAFLOWS)}")
        if self.weight_bits > self.row_bits:
            raise ValueError(f"weight_bits={self.weight_bits} does not fit in a row of "
                             f"row_bits={self.row_bits}")

    @property
    def words_per_row(self) -> int:
        """Weights held by one SRAM row (one row access reads them all)."""
        return self.row_bits // self.weight_bits

    def to_dict(self) -> dict:
        """The configuration as a plain dict (for cache keys and reports)."""
        return asdict(self)

    def scalesim_cfg_text(self, run_name: str = "sramsim") -> str:
        """This configuration as a SCALE-SIM 3 ``.cfg`` file, for a full run of its simulator."""
        return "\n".join([
            "[general]", f"run_name = {run_name}", "",
            "[architecture_presets]",
            f"ArrayHeight = {self.array_rows}", f"ArrayWidth = {self.array_cols}",
            f"IfmapSramSzkB = {self.ifmap_sram_kb}", f"FilterSramSzkB = {self.filter_sram_kb}",
            f"OfmapSramSzkB = {self.ofmap_sram_kb}",
            "IfmapOffset = 0", "FilterOffset = 10000000", "OfmapOffset = 20000000",
            "Bandwidth = 10", f"Dataflow = {self.dataflow}",
            "ReadRequestBuffer = 32", "WriteRequestBuffer = 32", "",
            "[layout]",
            "IfmapCustomLayout = False", "IfmapSRAMBankBandwidth = 10", "IfmapSRAMBankNum = 10",
            "IfmapSRAMBankPort = 2", "FilterCustomLayout = False",
            "FilterSRAMBankBandwidth = 10", "FilterSRAMBankNum = 10", "FilterSRAMBankPort = 2", "",
            "[sparsity]", "SparsitySupport = false", "SparseRep = ellpack_block",
            "OptimizedMapping = false", "BlockSize = 8", "RandomNumberGeneratorSeed = 40", "",
            "[run_presets]", "InterfaceBandwidth = CALC", "UseRamulatorTrace = False", "",
        ])
