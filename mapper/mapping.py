"""Timeloop mappings: per storage level temporal factors and loop order, spatial factors with
an X/Y split, and which data spaces the level keeps.

Permutations are written innermost first, as Timeloop does: ``permutation: QPNSRMC``
means Q is the innermost temporal loop of that level. The full loop nest, outer to
inner, is ``L0 temporal, L0 spatial, L1 temporal, L1 spatial, ..., Ln temporal, Ln spatial``,
where level i's spatial loops distribute work over the instances of level i+1 (or compute).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping as TMapping

from mapper.arch import Arch
from workloads.problem import Problem
from workloads.yamlio import InputError, as_int, dump_yaml, load_yaml, normalize_keys

_FACTOR_RE = re.compile(r"([A-Za-z_][A-Za-z_0-9]*?)\s*=?\s*(\d+)$")
_TOKEN_SPLIT_RE = re.compile(r"[\s,]+")
# Directive types: Timeloop reads "datatype", "bypass" and the older "dataspace" alike
# (src/mapping/parser.cpp ParseAndConstruct).
BYPASS_TYPES = ("datatype", "bypass", "bypassing", "dataspace")


def factor_tokens(raw: str) -> list[str]:
    """Split a Timeloop factor string: ``"C=3 M2"`` or timeloopfe's ``"R=1,P=1"``.

    Timeloop reads ``DIM=N,R`` as factor N with residual R (imperfect factorization); a bare
    number after a comma is such a residual, which bitloop does not model.
    """
    return [t for t in _TOKEN_SPLIT_RE.split(raw.split("#", 1)[0].strip()) if t]


@dataclass(frozen=True)
class LevelMapping:
    """The mapping of one storage level.

    Attributes:
        temporal: dimension -> temporal factor (absent = 1).
        permutation: temporal loop order, innermost first (absent dims are treated as outermost).
        spatial_x, spatial_y: dimension -> spatial factor along X / Y of the fanout below this level.
        spatial_permutation: order of the spatial loops, innermost first (X loops before Y loops).
        keep: names of the data spaces stored at this level (the others bypass it).
    """

    temporal: TMapping[str, int] = field(default_factory=dict)
    permutation: tuple[str, ...] = ()
    spatial_x: TMapping[str, int] = field(default_factory=dict)
    spatial_y: TMapping[str, int] = field(default_factory=dict)
    spatial_permutation: tuple[str, ...] = ()
    keep: frozenset[str] = frozenset()

    def temporal_loops(self, dims: Iterable[str]) -> list[tuple[str, int]]:
        """Temporal loops (dim, bound) of this level, outer to inner, bounds > 1 only."""
        order = self.full_permutation(dims)
        return [(d, self.temporal.get(d, 1)) for d in reversed(order) if self.temporal.get(d, 1) > 1]

    def full_permutation(self, dims: Iterable[str]) -> tuple[str, ...]:
        """Innermost-first order of every problem dimension (unlisted dims appended outermost)."""
        listed = [d for d in self.permutation]
        return tuple(listed + [d for d in dims if d not in listed])

    def spatial_factor(self, dim: str) -> int:
        return self.spatial_x.get(dim, 1) * self.spatial_y.get(dim, 1)


@dataclass(frozen=True)
class Mapping:
    """One mapping: a :class:`LevelMapping` per arch storage level, outer to inner."""

    levels: tuple[LevelMapping, ...]

    def factor_product(self, dim: str) -> int:
        return math.prod(l.temporal.get(dim, 1) * l.spatial_factor(dim) for l in self.levels)

    def to_yaml_dict(self, arch: Arch, problem: Problem) -> dict[str, Any]:
        """Timeloop mapping YAML (``mapping: [...]``) as plain data."""
        entries: list[dict[str, Any]] = []
        dims = problem.dims
        for lvl, lm in zip(arch.levels, self.levels):
            perm = lm.full_permutation(dims)
            entries.append({
                "target": lvl.name, "type": "temporal",
                "factors": " ".join(f"{d}={lm.temporal.get(d, 1)}" for d in dims),
                "permutation": "".join(perm) if all(len(d) == 1 for d in dims) else " ".join(perm),
            })
            both = set(lm.spatial_x) & set(lm.spatial_y)
            if both:
                raise ValueError(f"{lvl.name}: dimension {sorted(both)[0]} is split over both X and Y, which Timeloop mapping YAML cannot express")
            if lm.spatial_x or lm.spatial_y:
                xs = [d for d in lm.spatial_permutation if d in lm.spatial_x] or list(lm.spatial_x)
                ys = [d for d in lm.spatial_permutation if d in lm.spatial_y] or list(lm.spatial_y)
                xs += [d for d in lm.spatial_x if d not in xs]
                ys += [d for d in lm.spatial_y if d not in ys]
                rest = [d for d in dims if d not in xs and d not in ys]
                factors = {d: lm.spatial_x[d] for d in xs}
                factors.update({d: lm.spatial_y[d] for d in ys})
                factors.update({d: 1 for d in rest})
                order = xs + ys + rest
                entries.append({
                    "target": lvl.name, "type": "spatial",
                    "factors": " ".join(f"{d}={factors[d]}" for d in order),
                    "permutation": "".join(order) if all(len(d) == 1 for d in dims) else " ".join(order),
                    "split": len(xs),
                })
            entries.append({
                "target": lvl.name, "type": "datatype",
                "keep": [d for d in problem.dataspace_names if d in lm.keep],
                "bypass": [d for d in problem.dataspace_names if d not in lm.keep],
            })
        return {"mapping": entries}

    def to_yaml(self, arch: Arch, problem: Problem) -> str:
        return dump_yaml(self.to_yaml_dict(arch, problem))


# ---- parsing -------------------------------------------------------------------------------

def parse_factors(raw: Any, dims: tuple[str, ...], source: str, key: str,
                  bounds: TMapping[str, int] | None = None) -> dict[str, int]:
    """Parse Timeloop factors: ``"C=3 M2"``, ``"C=3,M=2"``, a list of such tokens, or a mapping.

    A factor of 0 means the whole problem dimension (Timeloop's rule) when ``bounds`` is given.
    """
    if raw is None:
        return {}
    if isinstance(raw, dict):
        items = list(raw.items())
    else:
        tokens = factor_tokens(raw) if isinstance(raw, str) else raw
        if not isinstance(tokens, list):
            raise InputError(source, key, f"expected factors like 'C=3 M2', got {raw!r}")
        items = []
        for tok in tokens:
            text = str(tok).strip()
            if text.isdigit():
                raise InputError(source, key, f"residual factor ',{text}' (an imperfect factorization) is not supported")
            match = _FACTOR_RE.match(text)
            if not match:
                raise InputError(source, key, f"bad factor {tok!r} (expected DIM=N or DIMN)")
            items.append((match.group(1), match.group(2)))
    factors: dict[str, int] = {}
    for dim, value in items:
        if dim not in dims:
            raise InputError(source, key, f"unknown dimension {dim!r} (problem dimensions: {', '.join(dims)})")
        number = as_int(value, source, f"{key}.{dim}", minimum=0 if bounds is not None else 1)
        factors[dim] = int(bounds[dim]) if number == 0 and bounds is not None else number
    return factors


def parse_permutation(raw: Any, dims: tuple[str, ...], source: str, key: str) -> tuple[str, ...]:
    """Parse a permutation (innermost first) written as ``"QPN"``, ``"Q P N"`` or a list."""
    if raw is None:
        return ()
    if isinstance(raw, list):
        order = [str(x) for x in raw]
    elif isinstance(raw, str):
        order = raw.split() if (" " in raw.strip() or any(len(d) > 1 for d in dims)) else list(raw.strip())
    else:
        raise InputError(source, key, f"expected a permutation string or list, got {raw!r}")
    for d in order:
        if d not in dims:
            raise InputError(source, key, f"unknown dimension {d!r} (problem dimensions: {', '.join(dims)})")
    if len(set(order)) != len(order):
        raise InputError(source, key, f"dimension repeated in permutation {raw!r}")
    return tuple(order)


def directive_level(entry: Any, arch: Arch, source: str, key: str) -> int:
    """Index of the arch level a mapping or constraint directive targets (clear errors otherwise).

    A ``spatial`` directive on a storage level without fanout whose next level is the
    ``inter_<container>_spatial`` dummy read from a v0.4 container applies to that dummy
    (bitloop's older v0.4 convention put a container's fanout on the level above it).
    """
    if not isinstance(entry, dict):
        raise InputError(source, key, "expected a directive mapping with target and type")
    target = entry.get("target")
    if not isinstance(target, str):
        raise InputError(source, f"{key}.target", f"expected a level name, got {target!r}")
    i = arch.level_index(target, source, f"{key}.target")
    if (entry.get("type") == "spatial" and arch.fanout(i) == (1, 1) and i + 1 < len(arch.levels)
            and arch.levels[i + 1].name in arch.aliases.values() and arch.fanout(i + 1) != (1, 1)):
        return i + 1
    return i


def skips_folded_fanout(entry: dict[str, Any], arch: Arch, problem: Problem, source: str, key: str) -> bool:
    """True for a directive that names a v0.4 container (or its ``inter_*_spatial`` dummy) whose
    fanout was folded into the level above (``spatial_dummies=False``) and says nothing beyond
    what the fold already implies: temporal factors of 1, or keeping nothing. A ``spatial``
    directive applies to the level above (False); anything else cannot be folded (InputError).
    """
    target = entry.get("target")
    if target not in arch.aliases or target in arch.level_names:
        return False
    level = arch.levels[arch.level_index(target, source, f"{key}.target")]
    kind = entry.get("type", "temporal")
    if level.is_dummy or kind == "spatial":
        return False
    if kind == "temporal":
        factors = parse_factors(entry.get("factors"), problem.dims, source, f"{key}.factors", problem.bounds)
        if all(f == 1 for f in factors.values()):
            return True
        what = "temporal factors > 1"
    elif kind in BYPASS_TYPES:
        if not entry.get("keep"):
            return True
        what = "kept data spaces"
    else:
        return False
    raise InputError(source, key, f"{target!r} is a spatial fanout folded into level {level.name!r}; it cannot have "
                                  f"{what} (read the arch with spatial_dummies=True to make it a level)")


def default_keep(arch: Arch, problem: Problem) -> list[set[str]]:
    """What each level keeps when no directive says: everything, except dummy levels (nothing).

    Timeloop keeps unmentioned data spaces (parser.cpp: 'X' = keep); timeloopfe pairs every
    dummy_storage level with a bypass-all directive (v4/constraints.py dummy_constraints).
    """
    return [set() if lvl.is_dummy else set(problem.dataspace_names) for lvl in arch.levels]


def mapping_from_dict(data: Any, arch: Arch, problem: Problem, source: str | os.PathLike = "<mapping>") -> Mapping:
    """Build a :class:`Mapping` from Timeloop mapping YAML data; unmentioned factors are 1 and
    unmentioned data spaces are kept."""
    source = str(source)
    data = normalize_keys(data)
    entries = data.get("mapping") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise InputError(source, "mapping", "expected a list of mapping directives")
    dims = problem.dims
    n = len(arch.levels)
    temporal: list[dict[str, int]] = [{} for _ in range(n)]
    perms: list[tuple[str, ...]] = [() for _ in range(n)]
    sx: list[dict[str, int]] = [{} for _ in range(n)]
    sy: list[dict[str, int]] = [{} for _ in range(n)]
    sperm: list[tuple[str, ...]] = [() for _ in range(n)]
    keep = default_keep(arch, problem)
    for i, entry in enumerate(entries):
        key = f"mapping[{i}]"
        li = directive_level(entry, arch, source, key)
        kind = entry.get("type", "temporal")
        if skips_folded_fanout(entry, arch, problem, source, key):
            continue
        if kind == "temporal":
            temporal[li].update(parse_factors(entry.get("factors"), dims, source, f"{key}.factors", problem.bounds))
            perms[li] = parse_permutation(entry.get("permutation"), dims, source, f"{key}.permutation")
        elif kind == "spatial":
            factors = parse_factors(entry.get("factors"), dims, source, f"{key}.factors", problem.bounds)
            perm = parse_permutation(entry.get("permutation"), dims, source, f"{key}.permutation")
            perm = perm + tuple(d for d in dims if d not in perm)
            split = entry.get("split")
            fx, fy = arch.fanout(li)
            split_at = as_int(split, source, f"{key}.split", minimum=0) if split is not None else (len(perm) if fy == 1 else 0)
            for pos, d in enumerate(perm):
                f = factors.get(d, 1)
                if f > 1:
                    (sx[li] if pos < split_at else sy[li])[d] = f
            sperm[li] = perm
        elif kind in BYPASS_TYPES:
            for field_name in ("keep", "bypass"):
                if not isinstance(entry.get(field_name) or [], list):
                    raise InputError(source, f"{key}.{field_name}", f"expected a list of data space names, got {entry[field_name]!r}")
            for ds_name in entry.get("keep") or []:
                if ds_name not in problem.dataspace_names:
                    _unknown_ds(source, f"{key}.keep", ds_name, problem)
                keep[li].add(ds_name)
            for ds_name in entry.get("bypass") or []:
                if ds_name not in problem.dataspace_names:
                    _unknown_ds(source, f"{key}.bypass", ds_name, problem)
                keep[li].discard(ds_name)
        else:
            raise InputError(source, f"{key}.type", f"expected temporal, spatial, datatype or bypass, got {kind!r}")
    levels = tuple(
        LevelMapping(temporal[i], perms[i], sx[i], sy[i], sperm[i], frozenset(keep[i])) for i in range(n)
    )
    mapping = Mapping(levels)
    validate_mapping(mapping, arch, problem, source)
    return mapping


def _unknown_ds(source: str, key: str, name: str, problem: Problem) -> None:
    raise InputError(source, key, f"unknown data space {name!r} (problem data spaces: {', '.join(problem.dataspace_names)})")


def validate_mapping(mapping: Mapping, arch: Arch, problem: Problem, source: str = "<mapping>") -> None:
    """Check factor products, fanout limits and that the outermost level keeps every data space.

    Capacity is checked by the nest analysis, which knows the tile sizes and bits per element.
    """
    if len(mapping.levels) != len(arch.levels):
        raise InputError(source, "mapping", f"expected directives for {len(arch.levels)} levels, got {len(mapping.levels)}")
    for d in problem.dims:
        prod = mapping.factor_product(d)
        if prod != problem.bounds[d]:
            raise InputError(
                source, f"factors.{d}",
                f"product of factors over all levels is {prod}, but the problem bound of {d} is {problem.bounds[d]}",
            )
    for i, (lvl, lm) in enumerate(zip(arch.levels, mapping.levels)):
        fx, fy = arch.fanout(i)
        used_x = math.prod(lm.spatial_x.values())
        used_y = math.prod(lm.spatial_y.values())
        if used_x > fx or used_y > fy:
            raise InputError(
                source, f"{lvl.name}.spatial",
                f"spatial factors use {used_x}x{used_y} but the fanout below {lvl.name} is meshX={fx}, meshY={fy}",
            )
    top = mapping.levels[0].keep
    missing = [d for d in problem.dataspace_names if d not in top]
    if missing:
        raise InputError(source, f"{arch.levels[0].name}.keep", f"the outermost level must keep every data space; it bypasses {', '.join(missing)}")


def load_mapping(path: str | os.PathLike, arch: Arch, problem: Problem) -> Mapping:
    """Read a Timeloop mapping YAML file against an arch and a problem."""
    return mapping_from_dict(load_yaml(path), arch, problem, path)
