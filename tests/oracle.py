"""Brute-force loop-nest walker: the test oracle for bitloop's dense nest analysis.

This is a literal, slow implementation of ``docs/nest_analysis.md`` for tiny problems. It
enumerates every iteration of the full loop nest, keeps each level instance's resident
tile as an explicit set of tensor points (the bounding box of the projection, gaps
included) and counts reads, fills and updates by set differences and unions. It uses no
closed-form tile or reuse formula, so it can check the analytical model in
``mapper/nest.py`` independently.

Conventions taken from the doc and the brief:

* the nest is ``L0 temporal, L0 spatial, L1 temporal, ..., L(n-1) spatial``; a level's
  temporal loops follow its permutation (innermost first; unlisted dims outermost);
* a problem coordinate is the mixed-radix number of the loop indices on its dimension,
  the outer loop being the most significant digit;
* the outermost level keeps every data space and has no parent, so nothing is ever
  filled into it and it never sends Outputs up (no fills, no "send up" reads there).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

from mapper.arch import Arch
from mapper.mapping import Mapping
from workloads.problem import DataSpace, Problem

Point = tuple[int, ...]
COUNT_KEYS = ("reads", "fills", "updates")


@dataclass(frozen=True)
class Loop:
    """One loop of the nest: owning storage level, temporal or spatial, dimension, bound."""

    level: int
    spatial: bool
    dim: str
    bound: int


def nest_loops(problem: Problem, mapping: Mapping) -> list[Loop]:
    """All loops with bound > 1, outer to inner, in the nest order of the doc."""
    loops: list[Loop] = []
    for i, lm in enumerate(mapping.levels):
        innermost_first = list(lm.permutation) + [d for d in problem.dims if d not in lm.permutation]
        for dim in reversed(innermost_first):
            bound = int(lm.temporal.get(dim, 1))
            if bound > 1:
                loops.append(Loop(i, False, dim, bound))
        # The order among one level's spatial loops only relabels instances; no count depends on it.
        for table in (lm.spatial_y, lm.spatial_x):
            for dim, bound in table.items():
                if int(bound) > 1:
                    loops.append(Loop(i, True, dim, int(bound)))
    for dim in problem.dims:
        product = math.prod(l.bound for l in loops if l.dim == dim)
        if product != int(problem.bounds[dim]):
            raise ValueError(f"factors of {dim} multiply to {product}, bound is {problem.bounds[dim]}")
    return loops


def _digit_weights(loops: list[Loop]) -> list[int]:
    """Weight of each loop index in its dimension's coordinate (product of inner bounds on that dim)."""
    return [math.prod(l.bound for l in loops[j + 1:] if l.dim == loop.dim) for j, loop in enumerate(loops)]


def project(problem: Problem, ds: DataSpace, point: dict[str, int]) -> Point:
    """Tensor coordinates of one operation-space point."""
    coords = []
    for axis in ds.projection:
        value = 0
        for term in axis:
            coef = 1 if term.coefficient is None else int(problem.coefficients[term.coefficient])
            value += coef * point[term.dim]
        coords.append(value)
    return tuple(coords)


def bounding_box(points: Iterable[Point]) -> frozenset[Point]:
    """Every tensor point inside the axis-aligned bounding box of ``points`` (gaps included)."""
    pts = list(points)
    lows = [min(p[a] for p in pts) for a in range(len(pts[0]))]
    highs = [max(p[a] for p in pts) for a in range(len(pts[0]))]
    return frozenset(itertools.product(*(range(lo, hi + 1) for lo, hi in zip(lows, highs))))


@dataclass
class _Events:
    """One storage instance's history: per step (then one final event) incoming, outgoing, first arrivals."""

    incoming: list[set[Point]]
    outgoing: list[set[Point]]
    first: list[set[Point]]
    distinct: int
    max_tile: int


def _storage_events(tiles: list[frozenset[Point]]) -> _Events:
    prev: frozenset[Point] = frozenset()
    ever: set[Point] = set()
    ev = _Events([], [], [], 0, max(len(t) for t in tiles))
    for tile in tiles:
        incoming = set(tile - prev)
        ev.incoming.append(incoming)
        ev.outgoing.append(set(prev - tile))
        ev.first.append(incoming - ever)
        ever |= incoming
        prev = tile
    # At the end the whole final tile leaves the instance.
    ev.incoming.append(set())
    ev.outgoing.append(set(prev))
    ev.first.append(set())
    ev.distinct = len(ever)
    return ev


def walk(problem: Problem, arch: Arch, mapping: Mapping) -> dict[str, Any]:
    """Walk the whole nest and return counts in the model's JSON layout.

    ``{"computes", "levels": {LEVEL: {"instances", "used_instances", "dataspaces": {DS: {reads, fills,
    updates, reads_per_instance, fills_per_instance, updates_per_instance, tile_size, multicast,
    spatial_reduction}}}}}``: totals are summed over every used instance, per-instance counts are
    totals / used instances, ``instances`` is the arch's instance count and only kept data spaces
    appear under a level. ``multicast`` (operands) = what the children receive / what the level reads
    for them; ``spatial_reduction`` (Outputs) = what the children send / the level's updates; 1.0 where
    the factor does not apply.
    """
    n = len(arch.levels)
    if len(mapping.levels) != n:
        raise ValueError("one LevelMapping per storage level expected")
    loops = nest_loops(problem, mapping)
    weights = _digit_weights(loops)
    names = problem.dataspace_names
    keep = [set(lm.keep) for lm in mapping.levels]
    if set(names) - keep[0]:
        raise ValueError("the outermost level must keep every data space")

    # Level c in 0..n (n = compute units): an instance is the tuple of the spatial loop
    # indices above c; its steps are the tuples of the temporal loop indices above c.
    inst_pos = [[j for j, l in enumerate(loops) if l.spatial and l.level < c] for c in range(n + 1)]
    step_pos = [[j for j, l in enumerate(loops) if not l.spatial and l.level < c] for c in range(n + 1)]
    groups: list[dict[tuple, dict[tuple, list[dict[str, int]]]]] = [
        defaultdict(lambda: defaultdict(list)) for _ in range(n + 1)
    ]
    computes = 0
    for idx in itertools.product(*(range(l.bound) for l in loops)):
        computes += 1
        point = {d: 0 for d in problem.dims}
        for j, loop in enumerate(loops):
            point[loop.dim] += idx[j] * weights[j]
        for c in range(n + 1):
            inst = tuple(idx[j] for j in inst_pos[c])
            step = tuple(idx[j] for j in step_pos[c])
            groups[c][inst][step].append(point)

    counts = {c: {d: dict.fromkeys(COUNT_KEYS, 0) for d in names if d in keep[c]} for c in range(n)}
    tile_size = {c: {d: 0 for d in names if d in keep[c]} for c in range(n)}
    factor = {c: {d: 1.0 for d in names if d in keep[c]} for c in range(n)}  # multicast / spatial reduction

    for ds in problem.dataspaces:
        d = ds.name
        keepers = [c for c in range(n) if d in keep[c]]
        events: dict[int, dict[tuple, _Events]] = {}
        for c in keepers:
            events[c] = {}
            for inst, steps in groups[c].items():
                tiles = [bounding_box(project(problem, ds, pt) for pt in steps[key]) for key in sorted(steps)]
                ev = _storage_events(tiles)
                events[c][inst] = ev
                tile_size[c][d] = max(tile_size[c][d], ev.max_tile)
                if c == keepers[0]:
                    continue  # outermost: no parent, nothing is filled, nothing is sent up
                incoming = sum(len(points) for points in ev.incoming)
                if ds.read_write:
                    counts[c][d]["fills"] += incoming - ev.distinct
                    counts[c][d]["reads"] += sum(len(points) for points in ev.outgoing)
                else:
                    counts[c][d]["fills"] += incoming

        for k, p in enumerate(keepers):
            child = keepers[k + 1] if k + 1 < len(keepers) else n
            prefix = len(inst_pos[p])  # a child belongs to the p instance with the same leading spatial indices
            by_parent: dict[tuple, list[tuple]] = defaultdict(list)
            for inst in groups[child]:
                by_parent[inst[:prefix]].append(inst)
            acc = counts[p][d]
            per_child = 0  # operands: sum of what each child receives; Outputs: of what each child sends
            union = 0      # operands: parent reads for its children; Outputs: parent updates
            for siblings in by_parent.values():
                if child < n:
                    evs = [events[child][i] for i in siblings]
                    for t in range(len(evs[0].incoming)):
                        if ds.read_write:
                            per_child += sum(len(e.outgoing[t]) for e in evs)
                            union += len(set().union(*(e.outgoing[t] for e in evs)))
                            acc["reads"] += len(set().union(*(e.incoming[t] - e.first[t] for e in evs)))
                        else:
                            per_child += sum(len(e.incoming[t]) for e in evs)
                            union += len(set().union(*(e.incoming[t] for e in evs)))
                else:
                    touched: set[Point] = set()
                    for key in sorted(groups[n][siblings[0]]):
                        needed = {project(problem, ds, pt) for u in siblings for pt in groups[n][u][key]}
                        per_child += sum(len(groups[n][u][key]) for u in siblings)
                        union += len(needed)
                        if ds.read_write:
                            acc["reads"] += len(needed & touched)
                            touched |= needed
            acc["updates" if ds.read_write else "reads"] += union
            factor[p][d] = per_child / union

    levels: dict[str, Any] = {}
    for c, lvl in enumerate(arch.levels):
        used = len(groups[c])
        dataspaces = {}
        for d in names:
            if d not in keep[c]:
                continue
            entry: dict[str, Any] = {}
            for key in COUNT_KEYS:
                total = counts[c][d][key]
                if total % used:
                    raise AssertionError(f"{lvl.name}/{d}/{key}: {total} not divisible by {used} instances")
                entry[key] = total
                entry[f"{key}_per_instance"] = total // used
            entry["tile_size"] = tile_size[c][d]
            rw = problem.dataspace(d).read_write
            entry["multicast"] = 1.0 if rw else factor[c][d]
            entry["spatial_reduction"] = factor[c][d] if rw else 1.0
            dataspaces[d] = entry
        levels[lvl.name] = {"instances": lvl.instances, "used_instances": used, "dataspaces": dataspaces}
    return {"computes": computes, "levels": levels}
