"""BitMoD datatypes as tables (bitmod.txt Sec. III, IV-A): values, special values, code and
metadata bits, bit-serial terms. No torch: spec validation and the work/format models of a
run on measured profiles need only these (the quantizer is sparsity_models.quantizers.bitmod).
"""

from __future__ import annotations

import math

FP_BASIC = {
    "fp3": (0.0, 1.0, 2.0, 4.0, -1.0, -2.0, -4.0),
    "fp4": (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0),
}
SPECIAL = {
    "fp3": (-6.0, -3.0, 3.0, 6.0), "fp3_er": (-3.0, 3.0), "fp3_ea": (-6.0, 6.0), "fp3_basic": (),
    "fp4": (-8.0, -5.0, 5.0, 8.0), "fp4_er": (-5.0, 5.0), "fp4_ea": (-8.0, 8.0), "fp4_basic": (),
}
INT_TYPES = {"int8": 8, "int6": 6}
ASYM_TYPES = {"int4_asym": 4, "int3_asym": 3}
DTYPES = tuple(SPECIAL) + tuple(INT_TYPES) + tuple(ASYM_TYPES)
HW_TERMS = {"int8": 4, "int6": 3}   # Booth radix-4 terms; every FP3/FP4 type: 2


def dtype_bits(dtype: str) -> int:
    """Code width in bits of a BitMoD datatype name."""
    if dtype in INT_TYPES:
        return INT_TYPES[dtype]
    if dtype in ASYM_TYPES:
        return ASYM_TYPES[dtype]
    return 3 if dtype.startswith("fp3") else 4


def selector_bits(dtype: str) -> int:
    """Per-group selector bits choosing the special value (0 for one or no candidate)."""
    n = len(SPECIAL.get(dtype, ()))
    return math.ceil(math.log2(n)) if n > 1 else 0


def hw_terms(dtype: str) -> int:
    """Bit-serial terms (cycles) per weight in the BitMoD PE for the datatype."""
    return HW_TERMS.get(dtype, 2)


def effective_bits(dtype: str, group_size: int, scale_bits: int | None = 8) -> float:
    """Stored bits per weight incl. per-group metadata: scale (8-bit, or 16 + 8-bit zero point
    for the asymmetric INT baselines) and the special-value selector."""
    if dtype in ASYM_TYPES:
        return ASYM_TYPES[dtype] + (16 + 8) / group_size
    sbits = 16 if scale_bits is None else scale_bits
    return dtype_bits(dtype) + (sbits + selector_bits(dtype)) / group_size
