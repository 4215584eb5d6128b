"""Accelerator families: their parameters and how their work and format models are built.

Every family lists its parameters with defaults; unknown families or parameter names raise
:class:`InputError` naming the key. Families whose cost depends on tensor bits build their
models from a :class:`LayerStats` (measured) or, without one, from a stated synthetic
profile whose name appears in ``describe()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable

from sparsity_models import synthetic
from sparsity_models.formats import BitsFormat
from sparsity_models.params import coerce
from sparsity_models.quantizers import bitmod_types as bm
from sparsity_models.quantizers.bbs_format import METHODS
from sparsity_models.workmodel import MODES, FixedWorkModel, MeasuredWorkModel
from workloads.yamlio import InputError

if TYPE_CHECKING:
    from sparsity_models.layerstats import LayerStats

COMMON = {"mode": "expected", "profile": synthetic.DEFAULT_PROFILE}
COMMON_CHOICES = {"mode": MODES, "profile": tuple(synthetic.PROFILES)}
PRESETS = {"conservative": (2, "rounded_average"), "moderate": (4, "zero_point")}
IGNORED_KEYS = ("family", "levels")   # spec keys that are not model parameters


@dataclass(frozen=True)
class Family:
    """One accelerator family.

    Attributes:
        name: canonical family name.
        params: parameter -> default.
        lane: what one compute lane is (for the component library and reports).
        work: ``(stats | None, params) -> WorkModel``.
        fmt: ``(stats | None, params) -> FormatModel``.
        choices: parameter -> allowed values.
        uses_stats: True when the models depend on tensor statistics.
    """

    name: str
    params: dict[str, Any]
    lane: str
    work: Callable[[LayerStats | None, dict], Any]
    fmt: Callable[[LayerStats | None, dict], Any]
    choices: dict[str, tuple] = field(default_factory=dict)
    uses_stats: bool = True


@lru_cache(maxsize=4)
def _synthetic(profile: str) -> LayerStats:
    from sparsity_models.layerstats import synthetic_stats  # torch: only when a synthetic profile is used

    return synthetic_stats(profile)


def _stats(stats: LayerStats | None, p: dict) -> LayerStats:
    return stats if stats is not None else _synthetic(p["profile"])


def _prov(stats: LayerStats, p: dict, extra: dict | None = None) -> dict:
    out = stats.provenance()
    out["params"] = {k: v for k, v in p.items()}
    if extra:
        out.update(extra)
    return out


def _analytical(p: dict, note: str) -> dict:
    return {"provenance": "analytical", "source": note, "params": dict(p)}


def _io_bits(p: dict, weights: float) -> dict[str, float]:
    return {"Weights": weights, "Inputs": float(p.get("input_bits", 8)), "Outputs": float(p.get("output_bits", 8))}


# ---- dense-like families -------------------------------------------------------------------
def _dense_work(name: str) -> Callable:
    def build(stats: LayerStats | None, p: dict) -> FixedWorkModel:
        info = _analytical(p, "bit-parallel MAC: 1 cycle and one 'mac' per MAC")
        if stats is not None and name in ("ant", "olive"):
            info = _prov(stats, p, {name: stats.section(name, {"bits": p["bits"]} if name == "ant" else {})})
        return FixedWorkModel(name, 1, 1.0, {"mac": 1.0}, info)
    return build


def _dense_fmt(stats: LayerStats | None, p: dict) -> BitsFormat:
    return BitsFormat("dense", {"Weights": p["weight_bits"], "Inputs": p["input_bits"], "Outputs": p["output_bits"]},
                      _analytical(p, "uncompressed integers"))


def _fp16_fmt(stats: LayerStats | None, p: dict) -> BitsFormat:
    return BitsFormat("fp16", {"Weights": 16, "Inputs": 16, "Outputs": 16}, _analytical(p, "FP16"))


def _ant_fmt(stats: LayerStats | None, p: dict) -> BitsFormat:
    bits = p["storage_bits"] or p["bits"]
    return BitsFormat("ant", _io_bits(p, bits), _analytical(p, "ANT: b-bit codes (per-tensor type metadata ignored); "
                                                              "storage_bits: mean over mixed-precision layers"))


def _olive_fmt(stats: LayerStats | None, p: dict) -> BitsFormat:
    return BitsFormat("olive", _io_bits(p, p["storage_bits"] or 4.0),
                      _analytical(p, "OliVe: 4-bit outlier-victim pairs (memory aligned); storage_bits: mean over "
                                     "mixed-precision layers"))


# ---- bit-serial baselines ------------------------------------------------------------------
def _stripes_work(stats: LayerStats | None, p: dict) -> FixedWorkModel:
    return FixedWorkModel("stripes", 1, p["bits"], {"compute": p["bits"], "idle": 0.0},
                          _analytical(p, "bit-serial over all weight bits"))


def _stripes_fmt(stats: LayerStats | None, p: dict) -> BitsFormat:
    return BitsFormat("stripes", _io_bits(p, p["bits"]), _analytical(p, "uncompressed"))


def _bitcols(stats: LayerStats, g: int) -> dict:
    return stats.section("bitcols", {"group_size": g, "sub_group": 8 if g % 8 == 0 else g})


def _pragmatic_work(stats: LayerStats | None, p: dict) -> MeasuredWorkModel:
    s = _stats(stats, p)
    sec = _bitcols(s, p["group_size"])
    return MeasuredWorkModel("pragmatic", p["group_size"], sec["pragmatic_cycles"], mode=p["mode"],
                             busy_per_mac=sec["pragmatic_busy_per_mac"],
                             info=_prov(s, p, {"statistic": "max non-zero magnitude bits over the lane group",
                                               "zero_bit_sparsity_sm": sec["zero_bit_sparsity_sm"]}))


def _bitlet_work(stats: LayerStats | None, p: dict) -> MeasuredWorkModel:
    s = _stats(stats, p)
    sec = _bitcols(s, p["group_size"])
    return MeasuredWorkModel("bitlet", p["group_size"], sec["bitlet_cycles"], mode=p["mode"],
                             info=_prov(s, p, {"statistic": "max ones per bit significance over the lane group"}))


def _bitserial_fmt(name: str) -> Callable:
    def build(stats: LayerStats | None, p: dict) -> BitsFormat:
        return BitsFormat(name, _io_bits(p, 8.0), _analytical(p, "all 8 weight bits are stored"))
    return build


def _bitwave_work(stats: LayerStats | None, p: dict) -> MeasuredWorkModel:
    s = _stats(stats, p)
    sec = s.section("bitwave", {"group_size": p["group_size"], "pruned_columns": p["pruned_columns"]})
    return MeasuredWorkModel("bitwave", p["group_size"], sec["cycles"], mode=p["mode"],
                             info=_prov(s, p, {"statistic": "non-zero magnitude columns after the bit-flip",
                                               "int_mse": sec["int_mse"]}))


def _bitwave_fmt(stats: LayerStats | None, p: dict) -> BitsFormat:
    s = _stats(stats, p)
    sec = s.section("bitwave", {"group_size": p["group_size"], "pruned_columns": p["pruned_columns"]})
    return BitsFormat("bitwave", _io_bits(p, sec["weight_bits_per_element"]),
                      _prov(s, p, {"breakdown": "non-zero magnitude columns + sign column + 8-bit column mask per group"}))


# ---- BitVert ---------------------------------------------------------------------------------
def _bitvert_params(stats: LayerStats, p: dict) -> dict:
    if p["pruning"] == "none":
        n, method = 0, "rounded_average"
    elif p["pruning"] == "custom":
        n, method = p["pruned_columns"], p["method"]
    else:
        n, method = PRESETS[p["pruning"]]
        if p["pruned_columns"] >= 0:
            n = p["pruned_columns"]
        if p["method"] != "auto":
            method = p["method"]
    if method == "auto":
        method = "zero_point"
    if n < 0:
        raise InputError("<work_model>", "work_model.pruned_columns", "expected an integer >= 0 with pruning: custom")
    if n > 6:
        raise InputError("<work_model>", "work_model.pruned_columns", "expected at most 6 (6-bit BBS constant)")
    sens, how = stats.sensitive_count(p["sensitive_fraction"], p["parallel_channels"])
    return {"group_size": p["group_size"], "sub_group": p["sub_group"], "pruned_columns": n, "method": method,
            "n_sensitive": sens, "max_redundant": p["max_redundant"]}, how


def _bitvert_section(stats: LayerStats | None, p: dict) -> tuple[LayerStats, dict, str]:
    s = _stats(stats, p)
    params, how = _bitvert_params(s, p)
    return s, s.section("bbs", params), how


def _bitvert_work(stats: LayerStats | None, p: dict) -> MeasuredWorkModel:
    s, sec, how = _bitvert_section(stats, p)
    keys = ("pruned_columns", "method", "n_sensitive", "stored_columns_mean", "effectual_per_stored_column_mean",
            "int_mse", "int_kl", "bitwave_int_mse")
    info = _prov(s, p, {k: sec[k] for k in keys})
    info["sensitive_selection"] = how
    info["statistic"] = "stored bit columns per group (one cycle each)"
    return MeasuredWorkModel("bitvert", p["group_size"], sec["stored_columns"], mode=p["mode"], info=info)


def _bitvert_fmt(stats: LayerStats | None, p: dict) -> BitsFormat:
    s, sec, _ = _bitvert_section(stats, p)
    return BitsFormat("bitvert", _io_bits(p, sec["weight_bits_per_element"]),
                      _prov(s, p, {"metadata_bits_per_weight": sec["metadata_bits_per_weight"],
                                   "channel_index_bits_per_weight": sec["channel_index_bits_per_weight"]}))


# ---- BitMoD ----------------------------------------------------------------------------------
def _bitmod_work(stats: LayerStats | None, p: dict) -> FixedWorkModel:
    terms = bm.hw_terms(p["dtype"])
    info = _analytical(p, "BitMoD PE: Booth terms for INT8/INT6, two terms for FP4/FP3")
    if stats is not None:
        sec = stats.section("bitmod", {"dtype": p["dtype"], "group_size": p["group_size"], "scale_bits": p["scale_bits"]})
        info = _prov(stats, p, {k: sec[k] for k in ("special_value_mix", "nonzero_terms_mean", "mse", "sqnr_db")})
    return FixedWorkModel("bitmod", p["lanes"], terms, {"compute": float(terms), "idle": 0.0}, info)


def _bitmod_fmt(stats: LayerStats | None, p: dict) -> BitsFormat:
    bits = bm.effective_bits(p["dtype"], p["group_size"], p["scale_bits"])
    return BitsFormat("bitmod", _io_bits(p, bits),
                      _analytical(p, "code bits + (INT8 group scale + special-value selector) / group size"))


# ---- bit-slice families ----------------------------------------------------------------------
_PANACEA_KEYS = ("v", "weight_bits", "zpm", "dbs", "dbs_target", "rle_bits", "tile_k", "n_dwo", "n_swo", "dtp", "pes")
_SIBIA_KEYS = ("v", "weight_bits", "act_bits", "tile_k", "outer_products_per_cycle")


def _slice_section(name: str, keys: tuple, stats: LayerStats | None, p: dict) -> tuple[LayerStats, dict]:
    s = _stats(stats, p)
    return s, s.section(name, {k: p[k] for k in keys})


def _panacea_work(stats: LayerStats | None, p: dict) -> MeasuredWorkModel:
    s, sec = _slice_section("panacea", _PANACEA_KEYS, stats, p)
    info = _prov(s, p, {k: sec[k] for k in ("rho_w", "rho_x", "dbs_type", "slice_products_per_mac")})
    return MeasuredWorkModel("panacea", p["v"] * p["v"], sec["tile_cycles"], mode=p["mode"], info=info)


def _panacea_fmt(stats: LayerStats | None, p: dict) -> BitsFormat:
    s, sec = _slice_section("panacea", _PANACEA_KEYS, stats, p)
    x = sec["input_bits_per_element"]
    return BitsFormat("panacea", {"Weights": sec["weight_bits_per_element"], "Inputs": x, "Outputs": x},
                      _prov(s, p, {"breakdown": "4-bit LO slices + RLE-compressed HO slice vectors (4v bits + index)"}))


def _sibia_work(stats: LayerStats | None, p: dict) -> MeasuredWorkModel:
    s, sec = _slice_section("sibia", _SIBIA_KEYS, stats, p)
    return MeasuredWorkModel("sibia", p["v"] * p["v"], sec["tile_cycles"], mode=p["mode"],
                             info=_prov(s, p, {"rho_w": sec["rho_w"], "rho_x": sec["rho_x"]}))


def _sibia_fmt(stats: LayerStats | None, p: dict) -> BitsFormat:
    return BitsFormat("sibia", {"Weights": p["weight_bits"], "Inputs": p["act_bits"], "Outputs": p["act_bits"]},
                      _analytical(p, "Sibia loads dense slices"))


# ---- term families ---------------------------------------------------------------------------
_SBQ_KEYS = ("budget", "comp", "depth", "weight_bits", "lanes", "max_rows", "max_tokens", "see", "max_macs")
_TQ_KEYS = ("budget", "group_size", "alpha_w", "alpha_a", "max_rows", "max_tokens", "max_macs")


def _term_work(name: str, keys: tuple) -> Callable:
    def build(stats: LayerStats | None, p: dict) -> FixedWorkModel:
        s = _stats(stats, p)
        sec = s.section(name, {k: p[k] for k in keys})
        b = float(p["budget"])
        u = sec["budget_utilization"]
        extra = {k: sec[k] for k in ("budget_utilization", "fraction_computed", "pairs_per_mult", "terms_per_weight",
                                     "terms_per_input") if k in sec}
        return FixedWorkModel(name, p["lanes"], b, {"compute": u * b, "idle": (1 - u) * b}, _prov(s, p, extra))
    return build


def _term_fmt(name: str) -> Callable:
    def build(stats: LayerStats | None, p: dict) -> BitsFormat:
        return BitsFormat(name, _io_bits(p, p.get("weight_bits", 8)), _analytical(p, "base-model integers"))
    return build


FAMILIES: dict[str, Family] = {}


def _add(f: Family) -> None:
    FAMILIES[f.name] = f


_IO = {"input_bits": 8, "output_bits": 8}
_add(Family("dense", {"weight_bits": 8, "input_bits": 8, "output_bits": 8}, "one bit-parallel MAC",
            _dense_work("dense"), _dense_fmt, uses_stats=False))
_add(Family("fp16", {}, "one FP16 MAC", _dense_work("fp16"), _fp16_fmt, uses_stats=False))
_add(Family("stripes", {"bits": 8, **_IO}, "one bit-serial multiplier (one weight)", _stripes_work, _stripes_fmt,
            uses_stats=False))
_add(Family("pragmatic", {"group_size": 16, **_IO}, "one bit-serial multiplier; group_size lanes share a step",
            _pragmatic_work, _bitserial_fmt("pragmatic")))
_add(Family("bitlet", {"group_size": 16, **_IO}, "one weight of a group processed per bit significance",
            _bitlet_work, _bitserial_fmt("bitlet")))
_add(Family("bitwave", {"group_size": 16, "pruned_columns": 0, **_IO}, "one weight of a column-serial group",
            _bitwave_work, _bitwave_fmt))
_add(Family("bitvert", {"group_size": 16, "sub_group": 8, "pruning": "none", "pruned_columns": -1, "method": "auto",
                        "sensitive_fraction": 0.0, "parallel_channels": 32, "max_redundant": 3, **_IO},
            "one weight of a 16-weight BBS group (8 bit-serial multipliers per 16 lanes)", _bitvert_work, _bitvert_fmt,
            {"pruning": ("none", "conservative", "moderate", "custom"), "method": ("auto",) + METHODS}))
_add(Family("bitmod", {"dtype": "fp4", "group_size": 128, "scale_bits": 8, "lanes": 4, "input_bits": 16,
                       "output_bits": 16}, "one lane of the 4-way bit-serial dot product", _bitmod_work, _bitmod_fmt,
            {"dtype": bm.DTYPES}, uses_stats=False))
_add(Family("panacea", {"v": 4, "weight_bits": 7, "zpm": True, "dbs": True, "dbs_target": 0.9, "rle_bits": 4,
                        "tile_k": 32, "n_dwo": 4, "n_swo": 8, "dtp": True, "pes": 16},
            "one output of a PEA's v x v block (12 outer-product units of 16 4bx4b multipliers per 16 lanes)",
            _panacea_work, _panacea_fmt))
_add(Family("sibia", {"v": 4, "weight_bits": 7, "act_bits": 7, "tile_k": 32, "outer_products_per_cycle": 4},
            "one output of a v x v block (four 4bx4b multipliers per lane)", _sibia_work, _sibia_fmt))
_add(Family("sbq", {"budget": 4, "comp": 4, "depth": 4, "weight_bits": 8, "lanes": 16, "max_rows": 64, "max_tokens": 64,
                    "see": True, "max_macs": 1 << 20, **_IO}, "one IPU compute lane (2-bit multiplier)",
            _term_work("sbq", _SBQ_KEYS), _term_fmt("sbq")))
_add(Family("tq", {"budget": 3, "group_size": 8, "alpha_w": 2.0, "alpha_a": 2.0, "lanes": 16, "max_rows": 64,
                   "max_tokens": 64, "max_macs": 1 << 20, **_IO}, "one term-pair lane (1-bit multiplier)",
            _term_work("tq", _TQ_KEYS), _term_fmt("tq")))
# storage_bits (0: bits / 4): mean stored bits per weight when layers mix precisions (BitMoD's simulator
# runs ANT/OliVe at such means, e.g. 5.5 bits: yc2367/BitMoD sim/test_ant.py).
_add(Family("ant", {"bits": 6, "storage_bits": 0.0, **_IO}, "one bit-parallel MAC", _dense_work("ant"), _ant_fmt,
            uses_stats=False))
_add(Family("olive", {"storage_bits": 0.0, **_IO}, "one bit-parallel MAC", _dense_work("olive"), _olive_fmt,
            uses_stats=False))

ALIASES = {"int8": "dense", "mac": "dense", "dense_int8": "dense", "intmac": "dense", "bbs": "bitvert"}


def resolve(family: Any, source: str = "<work_model>", key: str = "family") -> Family:
    """The family named ``family`` (aliases accepted)."""
    if not isinstance(family, str):
        raise InputError(source, key, f"expected a family name, got {family!r}")
    name = ALIASES.get(family.lower(), family.lower())
    if name not in FAMILIES:
        raise InputError(source, key, f"unknown family {family!r}; expected one of {sorted(FAMILIES)}")
    return FAMILIES[name]


def validate(fam: Family, params: dict[str, Any] | None, source: str, prefix: str) -> dict[str, Any]:
    """Full, type-checked parameters of a family (defaults filled in)."""
    params = dict(params or {})
    if "family" in params and resolve(params["family"], source, f"{prefix}.family").name != fam.name:
        raise InputError(source, f"{prefix}.family", f"conflicts with family {fam.name!r}")
    allowed = {**COMMON, **fam.params}
    choices = {**COMMON_CHOICES, **fam.choices}
    out: dict[str, Any] = {}
    for key, value in params.items():
        if key in IGNORED_KEYS:
            continue
        if key not in allowed:
            raise InputError(source, f"{prefix}.{key}",
                             f"unknown parameter for family {fam.name!r}; expected one of {sorted(allowed)}")
        out[key] = coerce(value, allowed[key], source, f"{prefix}.{key}", choices.get(key), key)
    for key, default in allowed.items():
        out.setdefault(key, default)
    if "sub_group" in out and out["group_size"] % out["sub_group"]:
        raise InputError(source, f"{prefix}.sub_group", f"expected a divisor of group_size {out['group_size']}")
    if fam.name == "bitvert" and out["pruning"] == "custom" and out["pruned_columns"] < 0:
        raise InputError(source, f"{prefix}.pruned_columns", "required with pruning: custom")
    return out
