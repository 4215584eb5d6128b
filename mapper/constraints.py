"""Timeloop mapping constraints: factor bounds, partial permutations, keep/bypass, spatial
X/Y split, minimum utilization -- as Timeloop reads them (``src/mapping/constraints.cpp``).

```yaml
constraints:                        # or `targets:`; a bare list; `architecture_constraints: {targets: [...]}`
- {target: GLB, type: temporal, factors: "M=1 K>=4 N<=8", permutation: "NK"}   # N, K innermost (in that order)
- {target: GLB, type: spatial, factors: "C=16", permutation: "CM", split: 1}      # C on X, M on Y
- {target: RF, type: bypass, keep: [Weights], bypass: [Inputs, Outputs]}        # also datatype / dataspace
- {target: RF, type: utilization, min: 0.5}          # used compute instances / all instances >= 50%
```

Factors may be space- or comma-separated (``R=1,P=1`` as timeloopfe writes them), ``DIM=0``
means the whole dimension and an exact factor larger than the dimension is ignored (both
Timeloop's rules); ``default_max_factor`` / ``default_min_factor`` bound the unlisted
dimensions. A ``dummy_storage`` level gets timeloopfe's dummy constraints unless told
otherwise: temporal factors of 1 and no data space kept (``v4/constraints.py``
``dummy_constraints``). Keys bitloop does not model are listed in ``Constraints.ignored``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from mapper.arch import Arch
from mapper.mapping import BYPASS_TYPES, directive_level, factor_tokens, parse_permutation
from workloads.problem import Problem
from workloads.yamlio import InputError, as_float, as_int, normalize_keys

_BOUND_RE = re.compile(r"^([A-Za-z_][A-Za-z_0-9]*?)\s*(<=|>=|=)?\s*(\d+)$")
_OPS = {"=": lambda f, v: f == v, "<=": lambda f, v: f <= v, ">=": lambda f, v: f >= v}
# Keys of a constraint entry that bitloop reads; others are reported as ignored.
_READ_KEYS = {"target", "name", "type", "factors", "permutation", "split", "keep", "bypass", "min",
              "default_max_factor", "default_min_factor", "proportion"}
# Section names that hold constraint lists (mapper.cpp: arch constraints, then mapspace constraints).
CONSTRAINT_SECTIONS = ("constraints", "architecture_constraints", "arch_constraints", "mapspace_constraints", "mapspace")


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


@dataclass
class Constraints:
    """Per-level constraints, aligned with the arch's storage levels.

    ``min_parallelism``: Timeloop's ``utilization`` constraint, the product over all spatial
    fanouts of used / available instances (``mapspaces/uber.cpp`` cumulative fanout utilization).
    ``ignored``: one line per constraint key that bitloop reads but does not model.
    """

    levels: list[LevelConstraints]
    min_parallelism: float = 0.0
    ignored: list[str] = field(default_factory=list)

    @classmethod
    def none(cls, arch: Arch) -> "Constraints":
        return cls([LevelConstraints() for _ in arch.levels])


def parse_factor_bounds(raw: Any, problem: Problem, source: str, key: str,
                        ignored: list[str] | None = None) -> dict[str, FactorBound]:
    """Parse ``"M=1 K>=4 N<=8"`` / ``"M=1,K>=4"`` (or a list of such tokens, or a {dim: value} mapping)."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        tokens = [f"{k}={v}" for k, v in raw.items()]
    elif isinstance(raw, str):
        tokens = factor_tokens(raw)
    elif isinstance(raw, list):
        tokens = [t for item in raw for t in factor_tokens(str(item))]
    else:
        raise InputError(source, key, f"expected factor bounds like 'M=1 K>=4', got {raw!r}")
    bounds: dict[str, FactorBound] = {}
    for tok in tokens:
        match = _BOUND_RE.match(tok.strip())
        if not match:
            raise InputError(source, key, f"bad factor bound {tok!r} (expected DIM=N, DIM<=N or DIM>=N)")
        dim, op, value = match.group(1), match.group(2) or "=", int(match.group(3))
        if dim not in problem.dims:
            raise InputError(source, key, f"unknown dimension {dim!r} (problem dimensions: {', '.join(problem.dims)})")
        bound = int(problem.bounds[dim])
        if op == "=" and value == 0:
            value = bound                       # Timeloop: 0 means the whole dimension
        elif value < 1:
            raise InputError(source, key, f"factor bound for {dim} must be >= 1, got {value}")
        if op == "=" and value > bound:
            if ignored is not None:             # Timeloop ignores it, with a warning
                ignored.append(f"{source}: {key}: {dim}={value} exceeds the dimension ({dim}={bound}); ignored")
            continue
        bounds[dim] = FactorBound(op, value)
    return bounds


def _entries(data: Any, source: str, key: str = "constraints") -> list[tuple[str, dict[str, Any]]]:
    """Flatten every Timeloop layout of a constraint list into (key, entry) pairs."""
    if data is None:
        return []
    if isinstance(data, list):
        out = []
        for i, entry in enumerate(data):
            k = f"{key}[{i}]"
            if isinstance(entry, dict) and isinstance(entry.get("constraints"), list):
                # Older nested form: {target: X, constraints: [{type: ..., attributes: {...}}]}
                for j, sub in enumerate(entry["constraints"]):
                    if not isinstance(sub, dict):
                        raise InputError(source, f"{k}.constraints[{j}]", "expected a constraint mapping")
                    merged = {"target": entry.get("target", entry.get("name")), **sub, **(sub.get("attributes") or {})}
                    merged.pop("attributes", None)
                    out.append((f"{k}.constraints[{j}]", merged))
            elif isinstance(entry, dict) and isinstance(entry.get("attributes"), dict):
                merged = {**entry, **entry["attributes"]}
                merged.pop("attributes")
                out.append((k, merged))
            else:
                out.append((k, entry))
        return out
    if isinstance(data, dict):
        found = False
        out = []
        for name in ("targets", "constraints", *CONSTRAINT_SECTIONS[1:]):
            if name in data and (isinstance(data[name], (list, dict)) or data[name] is None):
                found = True
                out += _entries(data[name], source, f"{key}.{name}" if key != name else name)
        if found or not data or set(data) <= {"version", "template"}:
            return out
    raise InputError(source, key, "expected a list of constraint entries (or a mapping with 'targets:')")


def constraints_from_list(entries: Any, arch: Arch, problem: Problem, source: str | os.PathLike = "<constraints>") -> Constraints:
    """Build :class:`Constraints` from Timeloop constraint data (any of the layouts in the module doc)."""
    return constraints_from_parts([(entries, str(source))], arch, problem)


def constraints_from_parts(parts: list[tuple[Any, str]], arch: Arch, problem: Problem) -> Constraints:
    """Build :class:`Constraints` from several (constraint data, source file) parts applied together,
    as Timeloop applies architecture and mapspace constraints together."""
    result = Constraints.none(arch)
    names = set(problem.dataspace_names)
    given_temporal: list[set[str]] = [set() for _ in arch.levels]
    flat = [(src, key, entry) for data, src in parts for key, entry in _entries(normalize_keys(data), src)]
    for source, key, entry in flat:
        if isinstance(entry, dict) and "target" not in entry and "name" in entry:
            entry = {**entry, "target": entry["name"]}
        li = directive_level(entry, arch, source, key)
        lc = result.levels[li]
        target = entry["target"]
        kind = entry.get("type", "temporal")
        for k in sorted(set(entry) - _READ_KEYS):
            result.ignored.append(f"{source}: {key}.{k}: not modelled by bitloop; ignored")
        if kind in ("temporal", "spatial"):
            bounds = parse_factor_bounds(entry.get("factors"), problem, source, f"{key}.factors", result.ignored)
            for name, op in (("default_max_factor", "<="), ("default_min_factor", ">=")):
                if entry.get(name) is not None:
                    value = as_int(entry[name], source, f"{key}.{name}", minimum=1)
                    bounds.update({d: FactorBound(op, value) for d in problem.dims if d not in bounds})
            inner, outer = _split_permutation(entry.get("permutation"), problem, source, f"{key}.permutation")
            if kind == "temporal":
                lc.temporal.update(bounds)
                given_temporal[li] |= set(bounds)
                if outer:
                    raise InputError(source, f"{key}.permutation", "outermost-loop permutation constraints "
                                                                   "(dimensions after '_') are not supported")
                lc.permutation = inner
            else:
                lc.spatial.update(bounds)
                if entry.get("split") is not None:
                    split = as_int(entry["split"], source, f"{key}.split", minimum=0)
                    perm = inner + outer
                    if not perm:
                        result.ignored.append(f"{source}: {key}.split: a split without a permutation; ignored")
                    else:
                        free = frozenset(d for d in problem.dims if d not in perm)
                        lc.x_dims, lc.y_dims = frozenset(perm[:split]) | free, frozenset(perm[split:]) | free
        elif kind in BYPASS_TYPES:
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
        elif kind in ("utilization", "parallelism"):
            result.min_parallelism = as_float(entry.get("min", 0.0), source, f"{key}.min", minimum=0.0)
            if result.min_parallelism > 1:
                raise InputError(source, f"{key}.min", f"expected a fraction in [0, 1], got {result.min_parallelism}")
        elif kind == "max_overbooked_proportion":
            result.ignored.append(f"{source}: {key}: max_overbooked_proportion ignored (bitloop never overbooks a buffer)")
        else:
            raise InputError(source, f"{key}.type", f"expected temporal, spatial, bypass (datatype, dataspace), "
                                                    f"utilization or max_overbooked_proportion, got {kind!r}")
    for i, lvl in enumerate(arch.levels):
        if lvl.is_dummy:   # timeloopfe's dummy constraints, where the input says nothing else
            lc = result.levels[i]
            lc.temporal.update({d: FactorBound("=", 1) for d in problem.dims if d not in given_temporal[i]})
            lc.bypass = lc.bypass | (frozenset(problem.dataspace_names) - lc.keep)
    top = result.levels[0]
    if top.bypass:
        where = " + ".join(dict.fromkeys(src for _, src in parts)) or "<constraints>"
        raise InputError(where, "constraints", f"the outermost level {arch.levels[0].name} must keep every data space")
    return result


def _split_permutation(raw: Any, problem: Problem, source: str, key: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Timeloop's ``"AB_CD"``: AB innermost (in that order), CD outermost."""
    if isinstance(raw, str) and "_" in raw and "_" not in problem.dims:
        inner, _, outer = raw.partition("_")
        return (parse_permutation(inner, problem.dims, source, key) if inner else (),
                parse_permutation(outer, problem.dims, source, key) if outer else ())
    return parse_permutation(raw, problem.dims, source, key), ()


