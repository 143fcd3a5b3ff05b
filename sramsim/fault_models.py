"""Fault models: what a faulty cell does to the bit stored in it (see :mod:`sramsim.faults`).

A module of its own, importing nothing of the project, so that :mod:`sramsim.faults` and
:mod:`sramsim.mapfile` both use it without importing each other.
"""
from __future__ import annotations

FAULT_MODELS = ("stuck-at", "flip")
DEFAULT_FAULT_MODEL = "stuck-at"
FAULT_MODEL_SEMANTICS = {
    "stuck-at": "each faulty cell holds a fixed random value (0 or 1 with equal probability), so "
                "about half of the faulty cells change the stored bit; BER = fraction of faulty "
                "cells (the NeuralFuse authors' model)",
    "flip": "every faulty cell inverts the stored bit; BER = fraction of faulty cells = fraction "
            "of flipped bits",
}


def check_fault_model(name: str) -> str:
    """Return ``name`` if it is one of :data:`FAULT_MODELS`, else raise a ValueError naming it."""
    if name not in FAULT_MODELS:
        raise ValueError(f"unknown fault model {name!r}: use one of {', '.join(FAULT_MODELS)}")
    return name
