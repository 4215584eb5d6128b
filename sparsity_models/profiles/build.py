"""Build the measured profiles from the real checkpoints (``python -m sparsity_models.profiles build``).

For every checkpoint of ``sparsity_models.checkpoints``: measure each layer's operands on
real inputs, compute the statistics sections that the families need for every setting in
the shipped specs (``specs/**/*.yaml``), the families' defaults and a small grid of common
variants, pool them per role and write ``sparsity_models/data/profiles/<checkpoint>.json``
together with the checkpoint's statistics table for docs/statistics.md.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch

from sparsity_models.cache import CACHE_VERSION, StatsCache
from sparsity_models.capture import Operands, evenly
from sparsity_models.checkpoints import CHECKPOINTS, MAX_ROWS, RealCheckpoint
from sparsity_models.families import FAMILIES, resolve, validate
from sparsity_models.layerstats import LayerStats, compute_sections
from sparsity_models.profiles import PROFILE_VERSION, SensitiveKeys
from sparsity_models.sections import SECTIONS, section_params
from workloads.yamlio import load_yaml, write_atomic

MAX_BLOCKS = 8               # transformer blocks measured (evenly spaced over depth); layers per role elsewhere
MAX_WEIGHT_ROWS = 1536       # output channels kept per layer (evenly spaced)
REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[1] / "data" / "profiles"

# Variants beyond the specs and defaults (group sizes and BBS presets users commonly try).
GRID: list[tuple[str, dict[str, Any]]] = (
    [(f, {"group_size": g}) for f in ("pragmatic", "bitlet") for g in (8, 16, 32, 64)]
    + [("bitwave", {"group_size": g, "pruned_columns": n}) for g in (16, 32) for n in (0, 2, 4)]
    + [("bitvert", {"group_size": g, "sub_group": 8, "pruning": pr, "sensitive_fraction": s})
       for g in (16, 32) for pr in ("none", "conservative", "moderate") for s in ((0.0,) if pr == "none" else (0.0, 0.02))]
    + [("sbq", {"budget": b, "comp": b, "depth": b}) for b in (3, 4)]
)


def spec_settings(spec_dir: Path = REPO / "specs") -> list[tuple[str, dict[str, Any]]]:
    """``(family, params)`` of every work_model / format_model in the spec files."""
    out = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("work_model", "format_model") and isinstance(value, dict) and "family" in value:
                    out.append((str(value["family"]), {k: v for k, v in value.items() if k not in ("family", "levels")}))
                else:
                    walk(value)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for path in sorted(spec_dir.rglob("*.yaml")):
        walk(load_yaml(path))
    return out


class _Recorder:
    """A LayerStats stand-in that records which sections (and parameters) the families read."""

    weights_synthetic = False

    def __init__(self, inner: LayerStats):
        self.inner = inner
        self.keys = SensitiveKeys()
        self.calls: dict[str, tuple[str, dict[str, Any], tuple[float, int] | None]] = {}
        self._rule: dict[int, tuple[float, int]] = {}

    def section(self, name: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        p = section_params(name, params)
        rule = self._rule.get(p.get("n_sensitive", 0)) if name == "bbs" else None
        self.calls[self.keys.key(name, p)] = (name, p, rule)
        return self.inner.section(name, p)

    def sensitive_count(self, fraction: float, parallel: int) -> tuple[int, str]:
        n = self.keys.count(fraction, parallel, self.inner.weight2d().shape[0])
        if n:
            self._rule[n] = (fraction, parallel)
        return n, "local" if n else "none"

    def provenance(self) -> dict[str, Any]:
        return self.inner.provenance()


def needed_sections(settings: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, tuple[str, dict, tuple | None]]:
    """Profile key -> (section, params, sensitive rule) read by the families for ``settings``."""
    from sparsity_models.report import report_sections

    g = torch.Generator().manual_seed(0)
    rec = _Recorder(LayerStats("probe", torch.randn(128, 256, generator=g) * 0.02, torch.randn(64, 256, generator=g)))
    for family, params in settings:
        fam = resolve(family)
        if not fam.uses_stats:
            continue
        p = validate(fam, params, "<profile build>", "work_model")
        fam.work(rec, p)
        fam.fmt(rec, p)
    for name, params in report_sections():
        rec.section(name, params)
    return rec.calls


def all_settings() -> list[tuple[str, dict[str, Any]]]:
    return [(f, {}) for f in FAMILIES] + spec_settings() + GRID


def _plain(v: Any) -> Any:
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def pool(results: list[dict[str, Any]], weights: list[float]) -> dict[str, Any]:
    """One role's section result from its layers' results (see the package doc for the rules)."""
    out: dict[str, Any] = {}
    total = float(sum(weights))
    for key in results[0]:
        vals = [r.get(key) for r in results]
        v0 = vals[0]
        if isinstance(v0, np.ndarray) and v0.ndim == 2:
            cat = np.concatenate([np.asarray(v, np.float64).ravel() for v in vals])
            u, c = np.unique(np.round(cat, 6), return_counts=True)
            out[key] = {"values": [float(x) for x in u], "counts": [int(x) for x in c]}
        elif isinstance(v0, np.ndarray):
            n = max(len(v) for v in vals)
            out[key] = {"hist": [int(x) for x in sum(np.pad(np.asarray(v, np.int64), (0, n - len(v))) for v in vals)]}
        elif isinstance(v0, dict):
            keys = sorted({k for v in vals for k in v})
            out[key] = {k: _plain(sum(w * float(v.get(k, 0.0)) for v, w in zip(vals, weights)) / total) for k in keys}
        elif isinstance(v0, bool) or v0 is None or isinstance(v0, str):
            out[key] = _plain(v0) if all(v == v0 for v in vals) else "mixed"
        elif key.endswith("sqnr_db") and key[: -len("sqnr_db")] + "mse" in results[0]:
            mse = key[: -len("sqnr_db")] + "mse"
            noise = sum(w * float(r[mse]) for r, w in zip(results, weights))
            signal = sum(w * float(r[mse]) * 10 ** (float(r[key]) / 10) for r, w in zip(results, weights))
            out[key] = _plain(10 * math.log10(signal / noise)) if noise > 0 else None
        else:
            finite = [(float(v), w) for v, w in zip(vals, weights) if v is not None and math.isfinite(float(v))]
            out[key] = _plain(sum(v * w for v, w in finite) / sum(w for _, w in finite)) if finite else None
    return out


_BLOCK = re.compile(r"(?:^|[./])(?:layer|layers|blk|block|h)[._/](\d+)(?:[./]|$)")


def sample_layers(ops: list[Operands]) -> list[Operands]:
    """The layers of at most MAX_BLOCKS transformer blocks (evenly spaced over depth), and at
    most MAX_BLOCKS layers of each role outside numbered blocks (evenly spaced)."""
    block = {o.name: (o.name[: m.start(1)], int(m.group(1))) for o in ops if (m := _BLOCK.search(o.name))}
    keep = set()
    for stack in {p for p, _ in block.values()}:     # e.g. an encoder's and a decoder's blocks separately
        idx = sorted({i for p, i in block.values() if p == stack})
        chosen = {idx[j] for j in np.unique(np.linspace(0, len(idx) - 1, min(len(idx), MAX_BLOCKS)).round().astype(int))}
        keep.update(n for n, (p, i) in block.items() if p == stack and i in chosen)
    for role in dict.fromkeys(o.role for o in ops):
        members = [o.name for o in ops if o.role == role and o.name not in block]
        if members:
            idx = np.unique(np.linspace(0, len(members) - 1, min(len(members), MAX_BLOCKS)).round().astype(int))
            keep.update(members[i] for i in idx)
    return [o for o in ops if o.name in keep]


def build_checkpoint(ck: RealCheckpoint, calls: dict, workers: int = 2, cache_dir: str | None = None) -> dict[str, Any]:
    """Measure ``ck`` and return its profile (plain data)."""
    from sparsity_models.report import build_rows

    ops = sample_layers(ck.measure(ck))
    widths = {o.name: o.weight.shape[0] for o in ops}
    for o in ops:
        o.weight = evenly(o.weight, MAX_WEIGHT_ROWS)
    cache = StatsCache(cache_dir)
    stats = {o.name: LayerStats(o.name, o.weight, o.inputs, source=ck.name, cache=cache) for o in ops}
    per_layer: dict[str, list[tuple[str, dict]]] = {}
    resolved: dict[str, dict[str, dict]] = {}
    for o in ops:
        m = stats[o.name].weight2d().shape[0]
        specs, keys = [], {}
        for key, (name, params, rule) in calls.items():
            if o.inputs is None and "inputs" in SECTIONS[name].needs:
                continue
            p = dict(params)
            if rule is not None:   # the layer's own count, scaled to the channels kept
                full = widths[o.name]
                p["n_sensitive"] = round(min(full, math.ceil(rule[0] * full / rule[1]) * rule[1]) * m / full)
            specs.append((name, p))
            keys[key] = p
        per_layer[o.name] = specs
        resolved[o.name] = keys
    compute_sections(stats, per_layer, workers=workers)
    roles: dict[str, Any] = {}
    for role in dict.fromkeys(o.role for o in ops):
        members = [o for o in ops if o.role == role]
        weights = [float(stats[o.name].weight2d().numel()) for o in members]
        sections = {}
        for key in resolved[members[0].name]:
            results = [stats[o.name].section(calls[key][0], resolved[o.name][key]) for o in members]
            sections[key] = pool(results, weights)
        roles[role] = {
            "layers": len(members), "layer_names": [o.name for o in members],
            "weight_elements": int(sum(weights)),
            "input_rows": int(sum(o.inputs.shape[0] for o in members if o.inputs is not None)),
            "inputs_measured": all(o.inputs is not None for o in members),
            "weight_encodings": sorted({o.note for o in members if o.note}),
            "sections": dict(sorted(sections.items())),
        }
    table_layers = {n: s for n, s in stats.items()
                    if next(o.role for o in ops if o.name == n) not in ("attn_qk", "attn_av", "head", "other")}
    table_roles = {o.name: o.role for o in ops if o.name in table_layers}
    rows = build_rows(table_layers, table_roles)
    return {
        "version": PROFILE_VERSION,
        "checkpoint": {"name": ck.name, "package": ck.package, "file": ck.file, "licence": ck.licence,
                       "architecture": ck.architecture, "format": ck.format, "inputs": ck.inputs,
                       "weights": ck.weights_note},
        "build": {"max_input_rows_per_layer": MAX_ROWS, "max_blocks": MAX_BLOCKS,
                  "max_weight_rows_per_layer": MAX_WEIGHT_ROWS, "stats_cache_version": CACHE_VERSION},
        "table": {"layers": len(table_layers), "weights": int(sum(s.weight.numel() for s in table_layers.values())),
                  "rows": [list(r) for r in rows]},
        "roles": roles,
    }


def build(names: Iterable[str] | None = None, workers: int = 2, cache_dir: str | None = None,
          out_dir: Path = DATA) -> dict[str, Path]:
    """Build and write the profiles of ``names`` (default: every checkpoint); returns the paths."""
    calls = needed_sections(all_settings())
    paths = {}
    for name in names or CHECKPOINTS:
        t0 = time.time()
        data = build_checkpoint(CHECKPOINTS[name], calls, workers, cache_dir)
        path = out_dir / f"{name}.json"
        write_atomic(path, json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
        paths[name] = path
        print(f"{name}: {len(data['roles'])} roles, {path.stat().st_size / 1024:.0f} KiB, {time.time() - t0:.0f} s",
              flush=True)
    return paths
