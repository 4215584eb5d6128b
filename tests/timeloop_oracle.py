"""Explicit walker of timeloop-model's access counting: the test oracle for bitloop's
``nest_analysis: timeloop`` closed form (mapper/nest_timeloop.py).

It follows the rules of docs/nest_analysis.md ("Timeloop semantics") step by step on
explicit point sets, for tiny problems:

* the loop nest is Timeloop's: per storage level (outer to inner) its temporal loops, then
  its spatial loops (Y outside X); only loops with a bound > 1, plus a bound-1 temporal loop
  for a level that has none (``Mapping::ParseMapping``);
* temporal extrapolation (``ComputeTemporalWorkingSet``): a temporal loop runs only its
  iterations 0 and 1, the second one standing for the other ``bound - 1`` (an epoch weight);
* a working set is the data-space box of the loops at and below a loop, at the current
  offset; each loop keeps the previous set and the previous translation, and its delta is the
  set difference only while the translation repeats (``SaveAndSubtractIfSameStride``);
* a spatial fan-out evaluates its first child only; the others get that delta translated by
  their offset; children with identical deltas share one parent access (multicast); a child
  whose delta equals a mesh neighbour's previous delta takes it over the link when that
  lowers the parent's accesses (``ComputeAccurateMulticastedAccesses``,
  ``ComputeNetworkLinkTransfers``);
* the per-level counts are collapsed as ``tiling.cpp`` does: partition sizes, parent access
  share, bypass masking, peer accesses and first-read elision.

No closed form is used: tiles are Python sets of tensor points.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from mapper.arch import Arch
from mapper.mapping import Mapping
from workloads.problem import Problem

Point = tuple[int, ...]
DeltaSet = frozenset


@dataclass
class _Loop:
    level: int          # bitloop storage level (0 = outermost)
    kind: str           # "T", "X" or "Y"
    dim: str
    bound: int
    step: int = 0       # problem-space stride of one iteration


@dataclass
class _State:
    """Per-loop memory: previous working set and translation per data space."""

    last: dict[str, frozenset] = field(default_factory=dict)
    last_t: dict[str, Point | None] = field(default_factory=dict)
    prev_deltas: dict[int, dict[str, frozenset]] = field(default_factory=dict)


def _build_loops(problem: Problem, arch: Arch, mapping: Mapping) -> tuple[list[_Loop], list[int]]:
    """Loops outer to inner and, per storage level, the index of its outermost (boundary) loop."""
    loops: list[_Loop] = []
    boundary: list[int] = []
    for i, lm in enumerate(mapping.levels):
        boundary.append(len(loops))
        temporal = [(d, int(lm.temporal.get(d, 1))) for d in reversed(lm.full_permutation(problem.dims))]
        temporal = [(d, b) for d, b in temporal if b > 1]
        if not temporal:
            temporal = [(problem.dims[-1], 1)]
        loops += [_Loop(i, "T", d, b) for d, b in temporal]
        order = list(lm.spatial_permutation) + [d for d in problem.dims if d not in lm.spatial_permutation]
        xs = [d for d in order if lm.spatial_x.get(d, 1) > 1]
        ys = [d for d in order if lm.spatial_y.get(d, 1) > 1]
        loops += [_Loop(i, "Y", d, int(lm.spatial_y[d])) for d in reversed(ys)]
        loops += [_Loop(i, "X", d, int(lm.spatial_x[d])) for d in reversed(xs)]
    for k, loop in enumerate(loops):
        loop.step = math.prod(l.bound for l in loops[k + 1:] if l.dim == loop.dim)
    return loops, boundary


class TimeloopWalker:
    """One mapping walked with Timeloop's counting rules."""

    def __init__(self, problem: Problem, arch: Arch, mapping: Mapping) -> None:
        self.problem, self.arch, self.mapping = problem, arch, mapping
        self.loops, self.boundary = _build_loops(problem, arch, mapping)
        self.names = problem.dataspace_names
        self.is_boundary = [False] * len(self.loops)
        for b in self.boundary:
            self.is_boundary[b] = True
        self.level_of = [l.level for l in self.loops]
        n = len(self.loops)
        self.state = [_State() for _ in range(n)]
        # accesses[k][ds][multicast] at loop k; link transfers per loop and data space.
        self.acc: list[dict[str, dict[int, float]]] = [defaultdict(lambda: defaultdict(float)) for _ in range(n)]
        self.links: list[dict[str, float]] = [defaultdict(float) for _ in range(n)]
        self.computes_per_unit = 0.0

    # ---- geometry ----------------------------------------------------------------------
    def extents(self, k: int) -> dict[str, int]:
        """Problem-space extent per dimension of the loops at and below index k."""
        return {d: math.prod(l.bound for l in self.loops[k:] if l.dim == d) for d in self.problem.dims}

    def project(self, ds_name: str, point: dict[str, int]) -> Point:
        ds = self.problem.dataspace(ds_name)
        return tuple(sum(self.problem.coefficient(t) * point[t.dim] for t in axis) for axis in ds.projection)

    def box(self, ds_name: str, lo: dict[str, int], ext: dict[str, int]) -> frozenset:
        """Data-space box spanned by the projected low and high corners (gaps included)."""
        low = self.project(ds_name, lo)
        high = self.project(ds_name, {d: lo[d] + ext[d] - 1 for d in lo})
        ranges = [range(a, b + 1) for a, b in zip(low, high)]
        out: set[Point] = {()}
        for r in ranges:
            out = {p + (v,) for p in out for v in r}
        return frozenset(out)

    @staticmethod
    def translation(prev: frozenset, cur: frozenset) -> Point:
        """Rounded difference of the centroids (equal-size boxes: the exact shift)."""
        dims = len(next(iter(cur)))
        mp = [sum(p[a] for p in prev) / len(prev) for a in range(dims)]
        mc = [sum(p[a] for p in cur) / len(cur) for a in range(dims)]
        return tuple(int(math.floor(c - p + 0.5)) if c - p >= 0 else -int(math.floor(p - c + 0.5)) for p, c in zip(mp, mc))

    def delta(self, k: int, offset: dict[str, int]) -> dict[str, frozenset]:
        """Working set of loop k at ``offset`` minus the remembered one, reset when the stride changes."""
        st = self.state[k]
        ext = self.extents(k)
        out = {}
        for ds in self.names:
            cur = self.box(ds, offset, ext)
            prev = st.last.get(ds)
            if not prev:
                out[ds] = cur
                st.last[ds] = cur
                continue
            t = self.translation(prev, cur)
            known = st.last_t.get(ds)
            if all(v == 0 for v in t):
                out[ds] = cur - prev
            elif known is None:
                out[ds] = cur - prev
                st.last_t[ds] = t
            elif known == t:
                out[ds] = cur - prev
            else:
                out[ds] = cur
                st.last_t[ds] = None
            st.last[ds] = cur
        return out

    # ---- the walk ------------------------------------------------------------------------
    def run(self, k: int, offset: dict[str, int], epochs: float) -> dict[str, frozenset]:
        loop = self.loops[k]
        if loop.kind == "T":
            if k == len(self.loops) - 1:
                for ds in self.names:
                    self.acc[k][ds][1] += loop.bound * epochs
                self.computes_per_unit += loop.bound * epochs
            else:
                iterations = [(0, epochs)] + ([(1, epochs * (loop.bound - 1))] if loop.bound > 1 else [])
                for index, weight in iterations:
                    moved = dict(offset)
                    moved[loop.dim] += index * loop.step
                    child = self.run(k + 1, moved, weight)
                    if self.is_boundary[k + 1]:
                        for ds in self.names:
                            if child[ds]:
                                self.acc[k][ds][1] += len(child[ds]) * weight
        elif k == 0 or self.loops[k - 1].kind == "T":   # the outermost spatial loop of a group
            self.spatial(k, offset, epochs)
        return self.delta(k, offset)

    def spatial(self, k: int, offset: dict[str, int], epochs: float) -> None:
        group = [k]
        while group[-1] + 1 < len(self.loops) and self.loops[group[-1] + 1].kind != "T":
            group.append(group[-1] + 1)
        below = group[-1] + 1
        # Element ids: mixed radix over the group, innermost loop least significant.
        elements: list[tuple[int, dict[str, int]]] = []
        ranges = [range(self.loops[g].bound) for g in group]
        def rec(depth: int, lin: int, off: dict[str, int]) -> None:
            if depth == len(group):
                elements.append((lin, off))
                return
            g = self.loops[group[depth]]
            for i in ranges[depth]:
                o = dict(off)
                o[g.dim] += i * g.step
                rec(depth + 1, lin * g.bound + i, o)
        rec(0, 0, {d: 0 for d in self.problem.dims})
        deltas: dict[int, dict[str, frozenset]] = {}
        if below < len(self.loops):
            first = self.run(below, offset, epochs)
            for lin, off in elements:
                deltas[lin] = {ds: frozenset(tuple(a + b for a, b in zip(p, self.project(ds, off))) for p in first[ds])
                               for ds in self.names}
        else:
            for lin, off in elements:
                point = {d: offset[d] + off[d] for d in self.problem.dims}
                deltas[lin] = {ds: frozenset({self.project(ds, point)}) for ds in self.names}
            self.computes_per_unit += epochs
        st = self.state[k]
        lvl = self.loops[k].level
        fx, fy = self.arch.fanout(lvl)
        lx = math.prod(self.loops[g].bound for g in group if self.loops[g].kind == "X")
        ly = math.prod(self.loops[g].bound for g in group if self.loops[g].kind == "Y")
        h, v = max(fx, lx), max(fy, ly)
        for ds in self.names:
            plain = self._multicast(deltas, ds, set(deltas))
            marked: set[int] = set()
            for lin in deltas:
                cur = deltas[lin][ds]
                if not cur:
                    continue
                hid, vid = lin % h, lin // h
                neighbours = []
                if v > 1:
                    neighbours += [(hid, vid - 1)] if vid >= 1 else []
                    neighbours += [(hid, vid + 1)] if vid + 1 < v else []
                if h > 1:
                    neighbours += [(hid - 1, vid)] if hid >= 1 else []
                    neighbours += [(hid + 1, vid)] if hid + 1 < h else []
                for nh, nv in neighbours:
                    prev = st.prev_deltas.get(nv * h + nh)
                    if prev is not None and prev[ds] == cur:
                        marked.add(lin)
                        break
            linked = self._multicast(deltas, ds, set(deltas) - marked)
            if marked and sum(linked.values()) < sum(plain.values()):
                self.links[k][ds] += sum(len(deltas[lin][ds]) for lin in marked) * epochs
                chosen = linked
            else:
                chosen = plain
            for m, a in chosen.items():
                self.acc[k][ds][m] += a * epochs
        st.prev_deltas = deltas

    @staticmethod
    def _multicast(deltas: dict[int, dict[str, frozenset]], ds: str, members: set[int]) -> dict[int, float]:
        """Accesses per multicast factor: each distinct non-empty delta is read once."""
        groups: dict[frozenset, int] = defaultdict(int)
        for lin in members:
            if deltas[lin][ds]:
                groups[deltas[lin][ds]] += 1
        out: dict[int, float] = defaultdict(float)
        for d, m in groups.items():
            out[m] += len(d)
        return out

    # ---- collapse into storage levels -------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        self.run(0, {d: 0 for d in self.problem.dims}, 1.0)
        L = len(self.mapping.levels)
        blocks = [range(self.boundary[i], self.boundary[i + 1] if i + 1 < L else len(self.loops)) for i in range(L)]
        spatial_product = []
        running = 1
        for i in range(L):
            spatial_product.append(running)
            running *= math.prod(self.loops[k].bound for k in blocks[i] if self.loops[k].kind != "T")
        compute_units = running
        result: dict[str, Any] = {"levels": {}, "computes": self.computes_per_unit * compute_units,
                                  "cycles": self.computes_per_unit, "compute_units": compute_units}
        for ds in self.names:
            rw = self.problem.dataspace(ds).read_write
            # Per storage level (inner = index 0 here, as tiling.cpp walks them).
            tiles = []
            for i in reversed(range(L)):
                block = blocks[i]
                inner_valid = next((k for k in block if self.loops[k].kind != "T"), block[-1])
                fanout = math.prod(self.loops[k].bound for k in block if self.loops[k].kind != "T")
                stats = dict(self.acc[inner_valid][ds])
                size = len(self.box(ds, {d: 0 for d in self.problem.dims}, self.extents(block[0])))
                spatial_k = next((k for k in block if self.loops[k].kind != "T"), None)
                union = len(self.box(ds, {d: 0 for d in self.problem.dims}, self.extents(spatial_k))) if spatial_k is not None else None
                tiles.append({
                    "level": i, "size": size, "stats": stats, "content": sum(stats.values()), "fanout": fanout,
                    "links": self.links[inner_valid][ds], "replication": spatial_product[i], "union": union,
                    "keep": ds in self.mapping.levels[i].keep, "share": 0.0, "peer_acc": 0.0, "peer_fill": 0.0,
                })
            n = len(tiles)
            # Partition sizes (ComputePartitionSizes): denominators from the next outer level.
            part = tiles[-1]["size"]
            tiles[-1]["partition"] = part
            for c in range(n - 2, -1, -1):
                outer = tiles[c + 1]
                denom = outer["union"] if outer["union"] is not None else tiles[c]["size"]
                part = part * tiles[c]["size"] // denom
                tiles[c]["partition"] = part
            # Parent access share (ComputeParentAccessShare), before masking.
            for c in range(n - 1):
                outer = tiles[c + 1]
                tiles[c]["share"] = sum(a * m for m, a in outer["stats"].items()) / outer["fanout"]
            # Bypass (MaskTiles): the next outer live level serves what the masked one served.
            for c in range(n):
                t = tiles[c]
                if t["size"] == 0 or t["keep"]:
                    continue
                outer_i = next((o for o in range(c + 1, n) if tiles[o]["size"] != 0), None)
                if outer_i is None:
                    t.update(size=0, partition=0, content=0.0, share=0.0)
                    break
                outer = tiles[outer_i]
                weighted = sum(a * m for m, a in outer["stats"].items())
                factor = t["content"] * outer["fanout"] / weighted if weighted else 0.0
                outer["stats"] = {m: a * factor for m, a in outer["stats"].items()}
                if any(a for a in outer["stats"].values()):
                    outer["links"] = 0.0
                outer["content"] = sum(outer["stats"].values())
                t.update(size=0, partition=0, content=0.0, share=0.0)
            # Outermost masked levels (ProcessOuterMaskedLevels).
            for c in range(n - 1, -1, -1):
                if not tiles[c]["keep"]:
                    tiles[c].update(size=0, partition=0, content=0.0, share=0.0, links=0.0, stats={})
                else:
                    tiles[c]["share"] = 0.0
                    break
            # Peer accesses from link transfers (ComputePeerAccesses).
            for c in range(n - 1, 0, -1):
                if tiles[c]["links"]:
                    per = tiles[c]["links"] / tiles[c - 1]["replication"]
                    tiles[c - 1]["peer_acc"] += per
                    tiles[c - 1]["peer_fill"] += per
            # Reads, fills, updates (ComputeReadUpdateReductionAccesses_Legacy).
            for c in range(n):
                t = tiles[c]
                if t["size"] == 0:
                    r = f = u = 0.0
                elif rw:
                    outermost = all(tiles[o]["size"] == 0 for o in range(c + 1, n))
                    u = _c_round(t["content"])
                    r = _c_round(t["content"] + t["peer_acc"] - t["partition"])
                    f = _c_round(t["share"] + t["peer_fill"] - (0 if outermost else t["partition"]))
                else:
                    r = _c_round(t["content"] + t["peer_acc"])
                    u = 0.0
                    f = float(math.floor(t["share"] + t["peer_fill"]))  # stored as uint64 (truncated)
                lvl = self.arch.levels[t["level"]]
                entry = result["levels"].setdefault(lvl.name, {"used_instances": t["replication"], "dataspaces": {}})
                if t["keep"]:
                    entry["dataspaces"][ds] = {
                        "reads_per_instance": r, "fills_per_instance": f, "updates_per_instance": u,
                        "tile_size": t["size"], "link_transfers_per_instance": t["links"],
                    }
        return result


def _c_round(x: float) -> float:
    """C's round(): halves away from zero (Python's round() rounds halves to even)."""
    return float(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def timeloop_walk(problem: Problem, arch: Arch, mapping: Mapping) -> dict[str, Any]:
    """Per level and data space: per-instance reads/fills/updates, tile size, link transfers."""
    return TimeloopWalker(problem, arch, mapping).evaluate()
