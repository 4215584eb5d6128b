"""Parameters of statistics sections and families: their ranges and coercion (no torch)."""

from __future__ import annotations

from typing import Any

from workloads.yamlio import InputError, as_float, as_int

# Lower bounds of integer and float parameters.
MINIMUM = {"group_size": 1, "sub_group": 1, "pruned_columns": 0, "n_sensitive": 0, "max_redundant": 0,
           "scale_bits": 2, "v": 1, "weight_bits": 4, "act_bits": 4, "rle_bits": 1, "tile_k": 1, "n_dwo": 1,
           "n_swo": 1, "outer_products_per_cycle": 1, "budget": 1, "comp": 0, "depth": 0, "lanes": 1,
           "max_rows": 1, "max_tokens": 1, "max_macs": 1, "bits": 2, "sensitive_fraction": 0.0, "alpha_w": 0.0,
           "alpha_a": 0.0, "parallel_channels": 1}


# Upper bounds of integer parameters: far beyond any real design, small enough that the arrays
# they size can be allocated (group sizes) and that every count fits int32.
MAXIMUM = {"group_size": 4096, "sub_group": 4096, "bits": 64, "weight_bits": 64, "act_bits": 64, "scale_bits": 64,
           "rle_bits": 64}
MAX_INT_PARAM = 2**31 - 1


def coerce(value: Any, default: Any, source: str, key: str, choices: tuple | None = None, name: str = "") -> Any:
    """Coerce a user value to the type of ``default`` (InputError naming ``key`` otherwise)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
           raise InputError(source, key, f"expected true or false, got {value!r}")
        return value
    if isinstance(default, int):
        return as_int(value, source, key, MINIMUM.get(name), maximum=MAXIMUM.get(name, MAX_INT_PARAM))
    if isinstance(default, float):
        out = as_float(value, source, key, 0.0)
        if name in ("dbs_target", "sensitive_fraction") and not out < 1.0:
           raise InputError(source, key, f"expected a fraction in [0, 1), got {out}")
        return out
    if isinstance(default, str):
        if not isinstance(value, str) or (choices and value not in choices):
           raise InputError(source, key, f"expected one of {list(choices or ())}, got {value!r}")
        return value
    return value
