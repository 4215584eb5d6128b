"""Format models: stored bits per element of each data space, metadata included."""

from __future__ import annotations

from typing import Any

from workloads.yamlio import InputError

DATASPACES = ("Weights", "Inputs", "Outputs")


class BitsFormat:
    """Fixed bits per element per data space (``Weights``, ``Inputs``, ``Outputs``).

    Args:
        family: accelerator family name.
        bits: data space name -> stored bits per element (metadata included).
        info: provenance and the breakdown of the bits, returned by :meth:`describe`.
    """

    def __init__(self, family: str, bits: dict[str, float], info: dict[str, Any] | None = None):
        self.family = family
        self.bits = {k: float(v) for k, v in bits.items()}
        self.info = dict(info or {})

    def bits_per_element(self, dataspace: str) -> float:
        if dataspace not in self.bits:
            raise InputError("<format_model>", "dataspace",
                             f"unknown data space {dataspace!r}; expected one of {sorted(self.bits)}")
        return self.bits[dataspace]

    def describe(self) -> dict:
        out = {"family": self.family, "bits_per_element": dict(self.bits)}
        out.update(self.info)
        return out
