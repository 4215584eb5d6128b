"""Registry of statistics sections: parameters (with defaults) and the function computing them."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from sparsity_models.quantizers import bbs_format as bbs
from sparsity_models.quantizers.bitmod_types import DTYPES
from sparsity_models.params import coerce
from workloads.yamlio import InputError


@dataclass(frozen=True)
class Section:
    """One statistics section.

    Attributes:
        defaults: parameter -> default value (also fixes each parameter's type).
        needs: operands used: ``weights`` and/or ``inputs``.
        compute: ``(layer_stats, params) -> dict``.
        choices: parameter -> allowed values, for string parameters.
    """

    defaults: dict[str, Any]
    needs: tuple[str, ...]
    compute: Callable[[Any, dict[str, Any]], dict[str, Any]]
    choices: dict[str, tuple] | None = None


def _stats(module: str) -> Any:
    """``sparsity_models.stats.<module>``, imported when a section is computed (torch), so that
    validating parameters and reading the bundled profiles stay torch-free."""
    return importlib.import_module(f"sparsity_models.stats.{module}")


def _bitcols(ls, p):
    q, _ = ls.int8()
    return _stats("bitserial").bitcol_stats(q, p["group_size"], p["sub_group"])


def _bbs(ls, p):
    q, scale = ls.int8()
    return _stats("bitserial").bbs_prune_stats(q, scale, ls.weight2d(), p["group_size"], p["sub_group"], p["pruned_columns"],
                                     p["method"], p["n_sensitive"], p["max_redundant"])


def _bitwave(ls, p):
    q, _ = ls.int8()
    return _stats("bitserial").bitwave_stats(q, p["group_size"], p["pruned_columns"])


SECTIONS: dict[str, Section] = {
    "bitcols": Section({"group_size": 16, "sub_group": 8}, ("weights",), _bitcols),
    "bbs": Section({"group_size": 16, "sub_group": 8, "pruned_columns": 0, "method": "rounded_average",
                    "n_sensitive": 0, "max_redundant": bbs.MAX_REDUNDANT}, ("weights",), _bbs,
                   {"method": bbs.METHODS}),
    "bitwave": Section({"group_size": 16, "pruned_columns": 0}, ("weights",), _bitwave),
    "bitmod": Section({"dtype": "fp4", "group_size": 128, "scale_bits": 8}, ("weights",),
                      lambda ls, p: _stats("bitmod").bitmod_stats(ls.weight2d(), p["dtype"], p["group_size"], p["scale_bits"]),
                      {"dtype": DTYPES}),
    "panacea": Section({"v": 4, "weight_bits": 7, "zpm": True, "dbs": True, "dbs_target": 0.9, "rle_bits": 4,
                        "tile_k": 32, "n_dwo": 4, "n_swo": 8, "dtp": False, "pes": 16}, ("weights", "inputs"),
                       lambda ls, p: _stats("slices").panacea_stats(ls.weight2d(), ls.inputs2d(), **p)),
    "sibia": Section({"v": 4, "weight_bits": 7, "act_bits": 7, "tile_k": 32, "outer_products_per_cycle": 4},
                     ("weights", "inputs"), lambda ls, p: _stats("slices").sibia_stats(ls.weight2d(), ls.inputs2d(), **p)),
    "sbq": Section({"budget": 4, "comp": 4, "depth": 4, "weight_bits": 8, "lanes": 16, "max_rows": 64,
                    "max_tokens": 64, "see": True, "max_macs": 1 << 20}, ("weights", "inputs"),
                   lambda ls, p: _stats("terms").sbq_stats(ls.weight2d(), ls.inputs2d(), **p)),
    "tq": Section({"budget": 3, "group_size": 8, "alpha_w": 2.0, "alpha_a": 2.0, "max_rows": 64, "max_tokens": 64,
                   "max_macs": 1 << 20},
                  ("weights", "inputs"), lambda ls, p: _stats("terms").tq_stats(ls.weight2d(), ls.inputs2d(), **p)),
    "int": Section({"bits": 8, "granularity": "channel", "group_size": 128, "symmetric": True}, ("weights",),
                   lambda ls, p: _stats("baselines").int_stats(ls.weight2d(), **p), {"granularity": ("tensor", "channel", "group")}),
    "ant": Section({"bits": 6}, ("weights",), lambda ls, p: _stats("baselines").ant_stats(ls.weight2d(), p["bits"])),
    "olive": Section({}, ("weights",), lambda ls, p: _stats("baselines").olive_stats(ls.weight2d())),
    "weight_values": Section({}, ("weights",), lambda ls, p: _stats("distribution").value_summary(ls.weight2d())),
    "input_values": Section({}, ("weights", "inputs"), lambda ls, p: _stats("distribution").value_summary(ls.inputs2d())),
}

def section_params(name: str, params: dict[str, Any] | None, source: str = "<stats>") -> dict[str, Any]:
    """Full, validated parameters of a section (defaults filled in)."""
    if name not in SECTIONS:
        raise InputError(source, "section", f"unknown statistics section {name!r}; expected one of {sorted(SECTIONS)}")
    sec = SECTIONS[name]
    params = dict(params or {})
    out = {}
    for key in params:
        if key not in sec.defaults:
            raise InputError(source, f"{name}.{key}", f"unknown parameter; expected one of {sorted(sec.defaults)}")
    for key, default in sec.defaults.items():
        value = params.get(key, default)
        out[key] = coerce(value, default, source, f"{name}.{key}", (sec.choices or {}).get(key), key)
    if name in ("bitcols", "bbs") and out["group_size"] % out["sub_group"]:
        raise InputError(source, f"{name}.sub_group", f"expected a divisor of group_size {out['group_size']}")
    if name == "bbs" and out["pruned_columns"] > 6:
        raise InputError(source, "bbs.pruned_columns", "expected at most 6 pruned columns (6-bit BBS constant)")
    return out
