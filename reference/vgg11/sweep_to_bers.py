"""Carry the reference sweep over to the measured 14nm curve: re-key it by BER (run once, 2026-12-05).

The sweep in ``sweep/`` was measured at 17 voltages of the two-point calibration of 14nm-512x64 (now
``14nm-512x64-two-point``). A chip's faults depend on the BER only (``at(voltage=V)`` draws the
faults of ``at(ber=BER(V))``), so every point it measured is the point of a BER sweep at those
voltages' BERs. This script checks that the BERs as a BER sweep stores them (rounded to
``BER_DECIMALS``) draw exactly the faults of the unrounded ones, on every chip, renames the point
files of those that do and removes the others (a cell whose threshold lies between the two BERs),
and rewrites ``sweep.json`` as ``neuralfuse sweep --bers`` would write it under the measured
curve. Then ``generators.sh sweep`` (with those BERs) measures the removed points again at the
rounded BER and rewrites the tables and plots.

    python reference/vgg11/sweep_to_bers.py reference/vgg11/sweep
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

import characterization
from characterization.atomic import write_json
from neuralfuse import load_base_model
from neuralfuse.tradeoff import BER_DECIMALS, VOLTAGE_DECIMALS
from sramsim import Deployment

OLD, NEW = "14nm-512x64-two-point", "14nm-512x64"


def main(folder: Path) -> None:
    record = json.loads((folder / "sweep.json").read_text())
    if "bers" in record:
        sys.exit(f"{folder} is a BER sweep already")
    exact = characterization.load(OLD).ber(np.array(record["voltages"]))
    bers = [round(float(b), BER_DECIMALS) for b in exact]
    base, _ = load_base_model(record["provenance"]["base"])
    deployment = Deployment(base, bits=record["bits"], fault_model=record["fault_model"],
                            layout=record["layout"])
    points = folder / "points"
    with deployment.quantized():
        for chip in record["chips"]:
            for voltage, unrounded, rounded in zip(record["voltages"], exact, bers):
                with deployment.at(ber=float(unrounded), chip=chip):
                    weights = [p.detach().clone() for p in base.parameters()]
                with deployment.at(ber=rounded, chip=chip):
                    same = all(torch.equal(a, b) for a, b in zip(weights, base.parameters()))
                measured = points / f"v{voltage:.{VOLTAGE_DECIMALS}f}-chip{chip}.json"
                if same:
                    measured.rename(points / f"ber{rounded:.{BER_DECIMALS}f}-chip{chip}.json")
                else:
                    print(f"chip {chip}: BER {unrounded!r} and {rounded} draw other faults: "
                          "removed, to be measured again", flush=True)
                    measured.unlink()
            print(f"chip {chip} done", flush=True)
    ascending = sorted(bers)
    record.update(tech=NEW, bers=ascending,
                  voltages=characterization.load(NEW).voltage_at_ber(np.array(ascending)).tolist())
    write_json(folder / "sweep.json", record)
    print("BERs:", ",".join(f"{b:.{BER_DECIMALS}f}" for b in ascending))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
