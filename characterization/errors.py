"""The two errors of the characterization package; both are ``ValueError``s."""
from __future__ import annotations


class TechnologyFileError(ValueError):
    """A technology CSV file is malformed; the message names the file and the row."""


class OutOfRangeError(ValueError):
    """A voltage (or a BER) lies outside a model's characterized range."""
