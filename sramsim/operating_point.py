"""Where the weight memory runs: a supply voltage (in units of Vmin) or a bit-error rate.

Every API that takes "a voltage or a BER" resolves it here, so the rule "exactly one of the two"
and the allowed range of a BER are checked in one place.

    >>> OperatingPoint.resolve(ber=0.01).describe()
    'BER 1.000%'
    >>> OperatingPoint.resolve(voltage=0.83).describe()
    '0.830 Vmin (BER 1.212%)'
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import characterization
from characterization import DEFAULT_TECH, VoltageModel
from characterization.validation import check_scalar

MAX_BER = 0.5
"""Highest bit-error rate (fraction of faulty cells) a point may have."""


def check_ber(ber: float) -> float:
    """Return ``ber`` as a float if it lies in [0, MAX_BER], else raise a ValueError naming it."""
    check_scalar(ber, "ber", float, min_val=0, max_val=MAX_BER,
                 allowed=f"a fraction of faulty cells in [0, {MAX_BER}], e.g. 0.01 for 1%")
    return float(ber)


def check_voltage_or_ber(voltage: object, ber: object, names: tuple[str, str] = ("voltage", "ber")) -> None:
    """Raise a ValueError unless exactly one of ``voltage`` and ``ber`` is given (not None).

    ``names`` are how the message calls them, e.g. ``("--voltage", "--ber")`` on a command line.
    """
    if (voltage is None) == (ber is None):
        raise ValueError(f"give exactly one of {names[0]} and {names[1]} (a voltage in units of Vmin, "
                         f"or a fraction of faulty cells); got {names[0]}={voltage!r}, {names[1]}={ber!r}")


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
                tech: str | os.PathLike[str] = DEFAULT_TECH,
                voltage_model: VoltageModel | None = None) -> OperatingPoint:
        """The point at ``voltage`` (× Vmin) or at ``ber``; exactly one of them must be given.
        ``voltage_model``: ``tech`` loaded already (saves loading it again, for callers that
        resolve a point per call)."""
        check_voltage_or_ber(voltage, ber)
        tech = os.fspath(tech)
        if voltage is not None:
            model = voltage_model if voltage_model is not None else characterization.load(tech)
            return cls(ber=check_ber(float(model.ber(float(voltage)))), voltage=float(voltage), tech=tech)
        return cls(ber=check_ber(ber), tech=tech)

    def describe(self) -> str:
        """A short human-readable label, e.g. ``'0.830 Vmin (BER 1.212%)'``."""
        ber = f"BER {100 * self.ber:.3f}%"
        return ber if self.voltage is None else f"{self.voltage:.3f} Vmin ({ber})"

    def as_dict(self) -> dict:
        """Plain values for JSON: ``voltage``, ``ber``, ``tech``."""
        return {"voltage": self.voltage, "ber": self.ber, "tech": self.tech}
