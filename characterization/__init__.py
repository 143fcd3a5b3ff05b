"""SRAM characterization: technologies as data files with sources, and fitted voltage models.

>>> import characterization
>>> model = characterization.load(characterization.DEFAULT_TECH)
>>> model.ber(0.83) > model.ber(0.9)
True

No torch here: this package is the silicon facts (see ``docs/architecture.md``).
"""
from characterization.errors import OutOfRangeError, TechnologyFileError
from characterization.model import VoltageModel
from characterization.technologies import DEFAULT_TECH, list_technologies, load

__all__ = [
    "DEFAULT_TECH",
    "OutOfRangeError",
    "TechnologyFileError",
    "VoltageModel",
    "list_technologies",
    "load",
]
