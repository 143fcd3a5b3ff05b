"""Benchmark: ResNet50's weight-memory accesses by the closed form, scalesim in-process, and a
full scalesim run, timed in the same run, with a check that all three agree.

    python bench/bench_accounting.py               # everything (the full run takes minutes, ~4 GB)
    python bench/bench_accounting.py --skip-full   # closed form and in-process scalesim only
"""
from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scalesim.scale_sim import scalesim

from sramsim.accounting import (SystolicConfig, create_network, extract_topology, filter_reads,
                                weight_accesses, write_scalesim_topology)

MODEL, INPUT = "resnet50", (3, 32, 32)


def best_of(repeats: int, fn):
    """(smallest wall time over ``repeats`` calls, last result)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def full_scalesim_run(layers, config: SystolicConfig) -> np.ndarray:
    """Run scalesim's whole simulator (memory system included, no traces) in a temporary folder
    and return the per-layer "SRAM Filter Reads" of its DETAILED_ACCESS_REPORT.csv."""
    with tempfile.TemporaryDirectory(prefix="sramsim-bench-") as folder:
        folder = Path(folder)
        write_scalesim_topology(layers, folder / "topology.csv")
        (folder / "config.cfg").write_text(config.scalesim_cfg_text(run_name="run"))
        (folder / "layout.csv").write_text("Layer name,\n")  # no custom layouts
        sim = scalesim(save_disk_space=True, verbose=False, config=str(folder / "config.cfg"),
                       topology=str(folder / "topology.csv"), layout=str(folder / "layout.csv"))
        with contextlib.redirect_stdout(io.StringIO()):   # scalesim prints per-layer banners
            sim.run_scale(top_path=str(folder))
        report = pd.read_csv(folder / "run" / "DETAILED_ACCESS_REPORT.csv", skipinitialspace=True)
        return report["SRAM Filter Reads"].to_numpy(dtype=np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-full", action="store_true", help="skip the full scalesim run")
    parser.add_argument("--repeats", type=int, default=20, help="repeats of the fast timings")
    args = parser.parse_args()

    config = SystolicConfig()
    model = create_network(MODEL)
    t_extract, layers = best_of(5, lambda: extract_topology(model, INPUT))
    t_analytic, analytic = best_of(args.repeats, lambda: filter_reads(layers, config, "analytic"))
    t_end_to_end, table = best_of(5, lambda: weight_accesses(model, INPUT, config))
    t_scalesim, in_process = best_of(1, lambda: filter_reads(layers, config, "scalesim",
                                                             use_cache=False))
    assert in_process.tolist() == analytic.tolist(), "in-process scalesim disagrees"
    print(f"{MODEL}, {len(layers)} layers, {config.array_rows}x{config.array_cols} "
          f"{config.dataflow.upper()}: T.W.M.A. {table.row_accesses.sum():,.0f} row accesses "
          f"({analytic.sum():,} SCALE-SIM filter reads)")
    print(f"  topology extraction (forward hooks)   {1e3 * t_extract:9.2f} ms")
    print(f"  closed-form engine                    {1e3 * t_analytic:9.3f} ms")
    print(f"  weight_accesses, analytic, end to end {1e3 * t_end_to_end:9.2f} ms")
    print(f"  scalesim engine in-process            {t_scalesim:9.2f} s   "
          f"({t_scalesim / t_analytic:,.0f}x the closed form)")
    if args.skip_full:
        print("  full scalesim run                     skipped (--skip-full)")
        return
    t_full, full = best_of(1, lambda: full_scalesim_run(layers, config))
    assert full.tolist() == analytic.tolist(), "full scalesim run disagrees"
    print(f"  full scalesim run (no traces)         {t_full:9.2f} s   "
          f"({t_full / t_analytic:,.0f}x the closed form); all three agree on every layer")


if __name__ == "__main__":
    main()
