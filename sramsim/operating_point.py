"""Where the weight memory runs: a supply voltage (in units of Vmin) or a bit-error rate.

Every API that takes "a voltage or a BER" resolves it here, so the rule "exactly one of the two"
and the allowed range of a BER are checked in one place.

    >>> OperatingPoint.resolve(ber=0.01).describe()
    'BER 1.000%'
    >>> OperatingPoint.resolve(voltage=0.83).describe()
    '0.830 Vmin (BER 1.000%)'
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

import characterization
from characterization import DEFAULT_TECH

MAX_BER = 0.5
"""Highest bit-error rate (fraction of faulty cells) a point may have."""


def check_ber(ber: float) -> float:
    """Return ``ber`` as a float if it lies in [0, MAX_BER], else raise a ValueError naming it."""
    if isinstance(ber, bool) or not isinstance(ber, (int, float, np.floating, np.integer)) \
            or not 0 <= ber <= MAX_BER:
        raise ValueError(f"ber={ber!r} is not valid: use a fraction of faulty cells in [0, {MAX_BER}], "
                         "e.g. 0.01 for 1%")
    return float(ber)


@dataclass(frozen=True)
class OperatingPoint:
    """A supply voltage or a bit-error rate of technology ``tech``.

    ``ber`` is always set (resolved through the technology's characterization when the point was
    given as a voltage); ``voltage`` is None for a point given as a BER.
    """

    ber: float
    voltage: float | None = None
    tech: str = DEFAULT_TECH

    @classmethod
    def resolve(cls, *, voltage: float | None = None, ber: float | None = None,
                tech: str | os.PathLike[str] = DEFAULT_TECH) -> OperatingPoint:
        """The point at ``voltage`` (× Vmin) or at ``ber``; exactly one of them must be given."""
        if (voltage is None) == (ber is None):
            raise ValueError("give exactly one of voltage= (in units of Vmin) or ber= (fraction of "
                             f"faulty cells); got voltage={voltage!r}, ber={ber!r}")
        tech = os.fspath(tech)
        if voltage is not None:
            return cls(ber=check_ber(float(characterization.load(tech).ber(float(voltage)))),
                       voltage=float(voltage), tech=tech)
        return cls(ber=check_ber(ber), tech=tech)

    def describe(self) -> str:
        """A short human-readable label, e.g. ``'0.830 Vmin (BER 1.000%)'``."""
        ber = f"BER {100 * self.ber:.3f}%"
        return ber if self.voltage is None else f"{self.voltage:.3f} Vmin ({ber})"

    def as_dict(self) -> dict:
        """Plain values for JSON: ``voltage``, ``ber``, ``tech``."""
        return {"voltage": self.voltage, "ber": self.ber, "tech": self.tech}
