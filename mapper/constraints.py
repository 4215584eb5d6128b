"""Timeloop mapping constraints (a subset): factor bounds, partial permutations, keep/bypass,
spatial X/Y split, minimum spatial utilization.

```yaml
constraints:
- {target: GLB, type: temporal, factors: "M=1 K>=4 N<=8", permutation: "NK"}   # N, K innermost (in that order)
- {target: GLB, type: spatial, factors: "C=16", permutation: "CM", split: 1}      # C on X, M on Y
- {target: RF, type: datatype, keep: [Weights], bypass: [Inputs, Outputs]}
- {target: GLB, type: utilization, min: 0.5}                                      # spatial fanout used >= 50%
```
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from mapper.arch import Arch
from mapper.mapping import directive_level, parse_permutation
from workloads.problem import Problem
from workloads.yamlio import InputError, as_float, as_int, load_yaml, normalize_keys

_BOUND_RE = re.compile(r"^([A-Za-z_][A-Za-z_0-9]*?)\s*(<=|>=|=)?\s*(\d+)$")
_OPS = {"=": lambda f, v: f == v, "<=": lambda f, v: f <= v, ">=": lambda f, v: f >= v}


@dataclass(frozen=True)
class FactorBound:
    """``factor OP value`` for one dimension."""

    op: str
    value: int

    def allows(self, factor: int) -> bool:
        return _OPS[self.op](factor, self.value)


@dataclass
class LevelConstraints:
    """Constraints on one storage level's mapping."""

    temporal: dict[str, FactorBound] = field(default_factory=dict)
    spatial: dict[str, FactorBound] = field(default_factory=dict)
    permutation: tuple[str, ...] = ()        # innermost-first dims that must be the innermost loops, in order
    x_dims: frozenset[str] | None = None     # dims allowed on X (None: any)
    y_dims: frozenset[str] | None = None
    keep: frozenset[str] = frozenset()
    bypass: frozenset[str] = frozenset()
    min_utilization: float = 0.0             # spatial fanout below this level that must be used


@dataclass
class Constraints:
    """Per-level constraints, aligned with the arch's storage levels."""

    levels: list[LevelConstraints]

    @classmethod
    def none(cls, arch: Arch) -> "Constraints":
        return cls([LevelConstraints() for _ in arch.levels])


def parse_factor_bounds(raw: Any, dims: tuple[str, ...], source: str, key: str) -> dict[str, FactorBound]:
    """Parse ``"M=1 K>=4 N<=8"`` (or a list of such tokens, or a {dim: value} mapping)."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        tokens = [f"{k}={v}" for k, v in raw.items()]
    elif isinstance(raw, str):
        tokens = raw.split()
    elif isinstance(raw, list):
        tokens = [str(t) for t in raw]
    else:
        raise InputError(source, key, f"expected factor bounds like 'M=1 K>=4', got {raw!r}")
    bounds: dict[str, FactorBound] = {}
    for tok in tokens:
        match = _BOUND_RE.match(tok.strip())
        if not match:
            raise InputError(source, key, f"bad factor bound {tok!r} (expected DIM=N, DIM<=N or DIM>=N)")
        dim, op, value = match.group(1), match.group(2) or "=", int(match.group(3))
        if dim not in dims:
            raise InputError(source, key, f"unknown dimension {dim!r} (problem dimensions: {', '.join(dims)})")
        if value < 1:
            raise InputError(source, key, f"factor bound for {dim} must be >= 1, got {value}")
        bounds[dim] = FactorBound(op, value)
    return bounds


def constraints_from_list(entries: Any, arch: Arch, problem: Problem, source: str | os.PathLike = "<constraints>") -> Constraints:
    """Build :class:`Constraints` from a Timeloop-style constraint list."""
    source = str(source)
    entries = normalize_keys(entries)
    if isinstance(entries, dict):
        entries = entries.get("constraints", entries.get("targets"))
    if entries is None:
        return Constraints.none(arch)
    if not isinstance(entries, list):
        raise InputError(source, "constraints", "expected a list of constraint entries")
    result = Constraints.none(arch)
    names = set(problem.dataspace_names)
    for i, entry in enumerate(entries):
        key = f"constraints[{i}]"
        lc = result.levels[directive_level(entry, arch, source, key)]
        target = entry["target"]
        kind = entry.get("type", "temporal")
        if kind == "temporal":
            lc.temporal.update(parse_factor_bounds(entry.get("factors"), problem.dims, source, f"{key}.factors"))
            lc.permutation = parse_permutation(entry.get("permutation"), problem.dims, source, f"{key}.permutation")
        elif kind == "spatial":
            lc.spatial.update(parse_factor_bounds(entry.get("factors"), problem.dims, source, f"{key}.factors"))
            perm = parse_permutation(entry.get("permutation"), problem.dims, source, f"{key}.permutation")
            if entry.get("split") is not None and perm:
                split = as_int(entry["split"], source, f"{key}.split", minimum=0)
                lc.x_dims, lc.y_dims = frozenset(perm[:split]), frozenset(perm[split:])
        elif kind in ("datatype", "bypass", "bypassing"):
            for field_name in ("keep", "bypass"):
                values = entry.get(field_name) or []
                if not isinstance(values, list):
                    raise InputError(source, f"{key}.{field_name}", "expected a list of data space names")
                bad = [v for v in values if not isinstance(v, str) or v not in names]
                if bad:
                    raise InputError(source, f"{key}.{field_name}", f"unknown data space {bad[0]!r} (known: {', '.join(problem.dataspace_names)})")
            lc.keep = lc.keep | frozenset(entry.get("keep") or [])
            lc.bypass = lc.bypass | frozenset(entry.get("bypass") or [])
            both = lc.keep & lc.bypass
            if both:
                raise InputError(source, key, f"data space {sorted(both)[0]} is both kept and bypassed at {target}")
        elif kind == "utilization":
            lc.min_utilization = as_float(entry.get("min", 0.0), source, f"{key}.min", minimum=0.0)
            if lc.min_utilization > 1:
                raise InputError(source, f"{key}.min", f"expected a fraction in [0, 1], got {lc.min_utilization}")
        else:
            raise InputError(source, f"{key}.type", f"expected temporal, spatial, datatype or utilization, got {kind!r}")
    top = result.levels[0]
    if top.bypass:
        raise InputError(source, "constraints", f"the outermost level {arch.levels[0].name} must keep every data space")
    return result


def load_constraints(path: str | os.PathLike, arch: Arch, problem: Problem) -> Constraints:
    """Read a constraint YAML file (``constraints: [...]``)."""
    return constraints_from_list(load_yaml(path), arch, problem, path)
