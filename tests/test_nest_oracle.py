"""The brute-force oracle (tests/oracle.py) against hand-derived counts and against the
analytical model ``mapper.model.evaluate`` under ``nest_analysis: exact`` on seeded random
(problem, arch, mapping) cases. (The default, Timeloop's counting, has its own oracle:
tests/test_nest_timeloop.py.)

Hand cases: every expected number is derived in the comments from the rules of
docs/nest_analysis.md by listing the points, so the oracle is validated on its own.
Random cases: GEMM, batched matmul, conv2d (stride 2, R,S > 1, dilation) and depthwise
conv on 3-level archs with fanout below the buffer and below the register level.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any, Callable

import pytest

from oracle import COUNT_KEYS, walk
from mapper.arch import Arch, arch_from_dict
from mapper.mapping import LevelMapping, Mapping, validate_mapping
from mapper.model import evaluate
from workloads.problem import Problem, batched_matmul, conv2d, depthwise_conv2d, gemm

ALL_DS = frozenset({"Weights", "Inputs", "Outputs"})
N_RANDOM = 400
MAX_MACS = 2000
FIELDS = (*COUNT_KEYS, *(f"{k}_per_instance" for k in COUNT_KEYS), "tile_size")
FACTORS = ("multicast", "spatial_reduction")


# ---- builders ---------------------------------------------------------------------------

def arch_dict(buf_mesh: tuple[int, int] = (1, 1), reg_fanout: tuple[int, int] = (1, 1),
              mac_fanout: tuple[int, int] = (1, 1)) -> dict[str, Any]:
    """A v0.4 DRAM / Buffer / Reg / MAC arch (as loaded from YAML); meshes are per-parent fanouts."""
    return {"architecture": {"version": 0.4, "nodes": [
        {"_tag": "Container", "name": "system"},
        {"_tag": "Component", "name": "DRAM", "class": "DRAM", "attributes": {"datawidth": 8, "width": 64}},
        {"_tag": "Container", "name": "chip", "spatial": {"meshX": buf_mesh[0], "meshY": buf_mesh[1]}},
        {"_tag": "Component", "name": "Buffer", "class": "SRAM",
         "attributes": {"datawidth": 8, "width": 8, "depth": 1 << 20}},
        {"_tag": "Container", "name": "PE", "spatial": {"meshX": reg_fanout[0], "meshY": reg_fanout[1]}},
        {"_tag": "Component", "name": "Reg", "class": "regfile", "attributes": {"datawidth": 8, "width": 8}},
        {"_tag": "Component", "name": "MAC", "class": "intmac",
         "spatial": {"meshX": mac_fanout[0], "meshY": mac_fanout[1]}, "attributes": {"datawidth": 8}},
    ]}}


def lm(temporal: dict[str, int] | None = None, perm: str = "", sx: dict[str, int] | None = None,
       sy: dict[str, int] | None = None, keep: frozenset[str] | set[str] = ALL_DS) -> LevelMapping:
    """Shorthand LevelMapping; ``perm`` is innermost first, one letter per dimension."""
    return LevelMapping(dict(temporal or {}), tuple(perm), dict(sx or {}), dict(sy or {}), (), frozenset(keep))


def expect(out: dict[str, Any], level: str, ds: str, reads: int, fills: int, updates: int, tile: int) -> None:
    """Assert total counts and tile size of one level/data space, and per-instance = total / instances."""
    inst = out["levels"][level]["used_instances"]
    got = out["levels"][level]["dataspaces"][ds]
    assert (got["reads"], got["fills"], got["updates"], got["tile_size"]) == (reads, fills, updates, tile), (level, ds, got)
    assert (got["reads_per_instance"], got["fills_per_instance"], got["updates_per_instance"]) == (
        reads // inst, fills // inst, updates // inst)


# ---- hand-derived cases -----------------------------------------------------------------

Case = tuple[Problem, Arch, Mapping]
HAND_CASES: dict[str, Callable[[], Case]] = {
    "sliding_window_stride2": lambda: (
        conv2d(N=1, C=1, M=1, R=3, S=1, P=4, Q=1, stride=2),
        arch_from_dict(arch_dict()),
        Mapping((lm({"P": 2}, "P"), lm({"P": 2}, "P"), lm({"R": 3}, "R"))),
    ),
    "dilated_window": lambda: (
        conv2d(N=1, C=1, M=1, R=2, S=1, P=4, Q=1, stride=2, dilation=3),
        arch_from_dict(arch_dict()),
        Mapping((lm({"P": 2}, "P"), lm({"P": 2}, "P", keep={"Inputs"}), lm({"R": 2}, "R", keep={"Inputs"}))),
    ),
    "multicast_reduction": lambda: (
        gemm(M=2, N=2, K=2),
        arch_from_dict(arch_dict(reg_fanout=(2, 1), mac_fanout=(1, 2))),
        Mapping((lm({"N": 2}, "N"), lm(sx={"M": 2}), lm(sy={"K": 2}, keep={"Weights", "Inputs"}))),
    ),
    "outputs_refetched": lambda: (
        gemm(M=2, N=1, K=2),
        arch_from_dict(arch_dict()),
        Mapping((lm({"M": 2, "K": 2}, "MKN"), lm(), lm(keep=set()))),
    ),
    "storage_siblings": lambda: (
        gemm(M=1, N=1, K=2),
        arch_from_dict(arch_dict(reg_fanout=(2, 1))),
        Mapping((lm(), lm(sx={"K": 2}), lm())),
    ),
    "partial_fanout": lambda: (
        gemm(M=2, N=1, K=1),
        arch_from_dict(arch_dict(reg_fanout=(4, 1))),
        Mapping((lm(), lm(sx={"M": 2}), lm())),
    ),
}


def test_sliding_window_stride2() -> None:
    """1-D conv, R=3, P=4, stride 2: input w = 2P + R covers w = 0..8 (9 points).

    Nest: p0 (DRAM, P2) / p1 (Buffer, P2) / r (Reg, R3); P = 2*p0 + p1. All levels keep all.
    Buffer steps p0=0,1: Inputs tiles {0..4}, {4..8} -> fills 5 + 4 = 9 = DRAM Inputs reads.
      Weights {r=0..2} both steps -> fills 3. Outputs {0,1}, {2,3}: all first arrivals -> fills 0;
      outgoing {0,1} at step 1 and {2,3} at the end -> Buffer reads 4, DRAM updates 4, DRAM reads 0.
    Reg steps P=0..3: Inputs {0,1,2},{2,3,4},{4,5,6},{6,7,8} -> fills 3+2+2+2 = 9 = Buffer Inputs reads;
      Weights fills 3 = Buffer Weights reads; Outputs {P}: fills 0, 4 outgoing -> Reg send-up reads 4,
      Buffer updates 4.
    Compute: 12 steps, one point each: Reg reads 12 Weights, 12 Inputs; Outputs updates 12 and reads
      12 - 4 first touches = 8, plus 4 send-up reads -> 12.
    """
    out = walk(*HAND_CASES["sliding_window_stride2"]())
    assert out["computes"] == 12
    assert [out["levels"][n]["used_instances"] for n in ("DRAM", "Buffer", "Reg")] == [1, 1, 1]
    expect(out, "DRAM", "Weights", 3, 0, 0, 3)
    expect(out, "DRAM", "Inputs", 9, 0, 0, 9)
    expect(out, "DRAM", "Outputs", 0, 0, 4, 4)
    expect(out, "Buffer", "Weights", 3, 3, 0, 3)
    expect(out, "Buffer", "Inputs", 9, 9, 0, 5)
    expect(out, "Buffer", "Outputs", 4, 0, 4, 2)
    expect(out, "Reg", "Weights", 12, 3, 0, 3)
    expect(out, "Reg", "Inputs", 12, 9, 0, 3)
    expect(out, "Reg", "Outputs", 12, 0, 12, 1)


def test_dilated_window_tiles_include_gaps() -> None:
    """R=2 dilation 3, P=4 stride 2: w = 3R + 2P, w = 0..9 (10 points). Only Inputs below DRAM.

    Nest: p0 (DRAM, P2) / p1 (Buffer, P2) / r (Reg, R2); w = 4*p0 + 2*p1 + 3*r.
    Reg tile at P: {2P, 2P+3} -> box {2P..2P+3}, 4 points with 2 gaps; tiles {0..3},{2..5},{4..7},{6..9}
      -> fills 4+2+2+2 = 10 = Buffer Inputs reads; compute reads Reg 8 times (8 steps).
    Buffer tile at p0: 4*p0 + {0,2,3,5} -> box of 6 points: {0..5}, {4..9} -> fills 6 + 4 = 10 = DRAM reads.
    Weights and Outputs live only in DRAM, so compute units are DRAM's children for them:
      Weights: one point per step, 8 steps -> DRAM reads 8 (tile: R=2 -> 2 points).
      Outputs: 8 steps -> 8 updates; P changes every 2 steps, 4 first touches -> reads 8 - 4 = 4.
    """
    out = walk(*HAND_CASES["dilated_window"]())
    assert out["computes"] == 8
    assert set(out["levels"]["Buffer"]["dataspaces"]) == {"Inputs"}
    assert set(out["levels"]["Reg"]["dataspaces"]) == {"Inputs"}
    expect(out, "Reg", "Inputs", 8, 10, 0, 4)
    expect(out, "Buffer", "Inputs", 10, 10, 0, 6)
    expect(out, "DRAM", "Inputs", 10, 0, 0, 10)
    expect(out, "DRAM", "Weights", 8, 0, 0, 2)
    expect(out, "DRAM", "Outputs", 4, 0, 8, 4)


def test_multicast_and_compute_spatial_reduction() -> None:
    """GEMM M=N=K=2; nest n (DRAM T, N2) / m (Buffer S-X, M2) / k (Reg S-Y, K2); Reg bypasses Outputs.

    Instances: DRAM 1, Buffer 1, Reg 2 (one per m), compute 4 (m, k). Steps: n for Buffer, Reg and compute.
    Buffer: Weights [M,K] tile is all 4 points every step -> fills 4; Inputs [K,N] tile {(0,n),(1,n)}
      -> fills 2 + 2 = 4; Outputs [M,N] {(0,n),(1,n)}: first arrivals -> fills 0, outgoing 2 + 2 -> send-up
      reads 4, DRAM updates 4. DRAM reads: Weights 4, Inputs 4, Outputs 0.
    Reg m: Weights {(m,0),(m,1)} constant -> fills 2 each (4 total); Buffer reads the union of both Regs'
      incoming at step 0 = 4 points. Inputs {(0,n),(1,n)} in both Regs -> fills 4 each (8 total), but
      Buffer reads the union, 2 per step = 4 (multicast 2).
    Compute under Reg m: units k=0,1 need Weights {(m,0),(m,1)} and Inputs {(0,n),(1,n)}: 2 reads per
      step per Reg -> 4 per Reg, 8 total for each operand.
    Outputs go from the 4 units straight to Buffer: per step the units write {(0,n),(1,n)} -> 2 updates per
      step (4 partial sums reduced to 2) -> 4 updates; all first touches -> 0 reads; + 4 send-up reads.
    """
    out = walk(*HAND_CASES["multicast_reduction"]())
    assert out["computes"] == 8
    assert [out["levels"][n]["used_instances"] for n in ("DRAM", "Buffer", "Reg")] == [1, 1, 2]
    expect(out, "DRAM", "Weights", 4, 0, 0, 4)
    expect(out, "DRAM", "Inputs", 4, 0, 0, 4)
    expect(out, "DRAM", "Outputs", 0, 0, 4, 4)
    expect(out, "Buffer", "Weights", 4, 4, 0, 4)
    expect(out, "Buffer", "Inputs", 4, 4, 0, 2)
    expect(out, "Buffer", "Outputs", 4, 0, 4, 2)
    expect(out, "Reg", "Weights", 8, 4, 0, 2)
    expect(out, "Reg", "Inputs", 8, 8, 0, 2)
    assert "Outputs" not in out["levels"]["Reg"]["dataspaces"]
    # multicast at the parent: Buffer Inputs 8 received / 4 read = 2; Buffer Weights 4 / 4 = 1; each
    # unit below a Reg needs different operand points (1). Spatial reduction at Buffer: the 4 units
    # send 4 partial sums per step, 8 in all, for 4 updates = 2.
    factors = {(lvl, ds): (v["multicast"], v["spatial_reduction"])
               for lvl, entry in out["levels"].items() for ds, v in entry["dataspaces"].items()}
    assert factors[("Buffer", "Inputs")] == (2.0, 1.0)
    assert factors[("Buffer", "Weights")] == (1.0, 1.0)
    assert factors[("Reg", "Inputs")] == factors[("Reg", "Weights")] == (1.0, 1.0)
    assert factors[("Buffer", "Outputs")] == (1.0, 2.0)
    assert factors[("DRAM", "Outputs")] == factors[("DRAM", "Inputs")] == (1.0, 1.0)


def test_outputs_evicted_and_refetched() -> None:
    """GEMM M=2, N=1, K=2, all loops at DRAM with K outer, M inner; Reg keeps nothing.

    Buffer steps (k, m) = (0,0),(0,1),(1,0),(1,1); Buffer holds one point of each tensor.
    Outputs {m}: {0},{1},{0},{1}: incoming 4, distinct 2 -> fills 2; outgoing {0},{1},{0} + final {1}
      -> send-up reads 4, DRAM updates 4; DRAM reads the 2 non-first arrivals (steps 2 and 3).
      Compute (child of Buffer): 4 updates; reads skip the 2 first touches -> 2; Buffer reads 2 + 4 = 6.
    Weights {(m,k)} differ every step -> fills 4 = DRAM reads; compute reads 4.
    Inputs {k}: {0},{0},{1},{1} -> fills 2 = DRAM reads; compute reads 4.
    """
    out = walk(*HAND_CASES["outputs_refetched"]())
    assert out["computes"] == 4
    assert out["levels"]["Reg"] == {"instances": 1, "used_instances": 1, "dataspaces": {}}
    expect(out, "Buffer", "Outputs", 6, 2, 4, 1)
    expect(out, "DRAM", "Outputs", 2, 0, 4, 2)
    expect(out, "Buffer", "Weights", 4, 4, 0, 1)
    expect(out, "DRAM", "Weights", 4, 0, 0, 4)
    expect(out, "Buffer", "Inputs", 4, 2, 0, 1)
    expect(out, "DRAM", "Inputs", 2, 0, 0, 2)


def test_storage_siblings_reduce_outputs() -> None:
    """GEMM M=N=1, K=2 split spatially over 2 Regs below Buffer; one step everywhere.

    Each Reg k holds Weights (0,k), Inputs (k,0) and the single output (0,0).
    Reg Outputs: first arrival -> fills 0; final tile leaves -> 1 send-up read each (2 total);
      its compute unit writes once with the first read skipped -> 1 update each (2 total).
    Buffer Outputs: updates = |union of the two Regs' outgoing {(0,0)}| = 1; own final send-up read 1.
    DRAM Outputs: 1 update. Operands: Buffer reads the union {k=0,1} = 2, Regs fill 1 each.
    """
    out = walk(*HAND_CASES["storage_siblings"]())
    assert out["computes"] == 2
    assert out["levels"]["Reg"]["used_instances"] == 2
    expect(out, "Reg", "Outputs", 2, 0, 2, 1)
    expect(out, "Buffer", "Outputs", 1, 0, 1, 1)
    expect(out, "DRAM", "Outputs", 0, 0, 1, 1)
    assert out["levels"]["Buffer"]["dataspaces"]["Outputs"]["spatial_reduction"] == 2.0  # 2 sent, 1 update
    assert out["levels"]["DRAM"]["dataspaces"]["Outputs"]["spatial_reduction"] == 1.0
    for ds in ("Weights", "Inputs"):
        expect(out, "Reg", ds, 2, 2, 0, 1)
        expect(out, "Buffer", ds, 2, 2, 0, 2)
        expect(out, "DRAM", ds, 2, 0, 0, 2)


def test_partial_fanout_counts_used_instances_only() -> None:
    """Fanout 4 below Buffer but a spatial factor of 2: only 2 Regs are used.

    GEMM M=2, N=K=1: each used Reg m fills Weights (m,0) once; totals 2, per instance 1.
    """
    out = walk(*HAND_CASES["partial_fanout"]())
    assert (out["levels"]["Reg"]["instances"], out["levels"]["Reg"]["used_instances"]) == (4, 2)
    expect(out, "Reg", "Weights", 2, 2, 0, 1)


def test_oracle_rejects_imperfect_factorization() -> None:
    problem = gemm(M=4, N=1, K=1)
    arch = arch_from_dict(arch_dict())
    with pytest.raises(ValueError, match="factors of M"):
        walk(problem, arch, Mapping((lm({"M": 2}), lm(), lm())))


# ---- random cases -------------------------------------------------------------------------

def _divisors(n: int) -> list[int]:
    return [f for f in range(1, n + 1) if n % f == 0]


def random_problem(rng: random.Random) -> Problem:
    """A tiny random problem (<= MAX_MACS MACs); conv cases mostly use stride 2 and R, S > 1."""
    while True:
        kind = rng.choice(["gemm", "gemm", "conv", "conv", "conv", "depthwise", "bmm"])
        if kind == "gemm":
            p = gemm(M=rng.choice([1, 2, 3, 4, 6, 8, 12]), N=rng.choice([1, 2, 4, 6, 8]),
                     K=rng.choice([1, 2, 3, 4, 8, 16]))
        elif kind == "bmm":
            p = batched_matmul(B=rng.choice([1, 2, 3]), M=rng.choice([1, 2, 4]), N=rng.choice([1, 2, 3, 4]),
                               K=rng.choice([2, 4, 6]))
        else:
            stride = rng.choice([2, 2, 2, 1, (2, 1), (1, 2), 3])
            dilation = rng.choice([1, 1, 2, (2, 1), 3])
            dims = dict(N=rng.choice([1, 1, 2]), C=rng.choice([1, 2, 3, 4]), R=rng.choice([2, 3, 3, 1]),
                        S=rng.choice([2, 3, 1]), P=rng.choice([1, 2, 3, 4, 6, 8]), Q=rng.choice([1, 2, 4, 6]))
            if kind == "conv":
                p = conv2d(M=rng.choice([1, 2, 4]), stride=stride, dilation=dilation, **dims)
            else:
                p = depthwise_conv2d(stride=stride, dilation=dilation, **dims)
        if 16 <= p.macs <= MAX_MACS:
            return p


def random_arch(rng: random.Random) -> Arch:
    """DRAM / Buffer / Reg / MAC with fanout below Buffer and below Reg (sometimes 2 Buffers too)."""
    buf = rng.choice([(1, 1), (1, 1), (1, 1), (2, 1)])
    reg = rng.choice([(2, 1), (4, 1), (2, 2), (3, 1), (1, 2), (4, 2)])
    mac = rng.choice([(2, 1), (1, 2), (2, 2), (4, 1), (3, 2), (1, 1)])
    return arch_from_dict(arch_dict(buf, reg, mac), "<random arch>")


def random_mapping(rng: random.Random, problem: Problem, arch: Arch) -> Mapping:
    """Random perfect factorization over temporal and X/Y spatial slots, permutations and bypass."""
    dims = list(problem.dims)
    rest = {d: int(problem.bounds[d]) for d in dims}
    n = len(arch.levels)
    spatial: list[tuple[dict[str, int], dict[str, int]]] = [({}, {}) for _ in range(n)]
    for i in range(n):
        for axis in rng.sample([0, 1], 2):
            cap = arch.fanout(i)[axis]
            for d in rng.sample(dims, len(dims)):
                if cap == 1 or d in spatial[i][axis] or (d in spatial[i][1 - axis] and rng.random() < 0.85):
                    continue  # a dim split over both X and Y of one level is kept rare
                options = [f for f in _divisors(rest[d]) if 1 < f <= cap]
                if options and rng.random() < 0.6:
                    f = rng.choice(options)
                    spatial[i][axis][d] = f
                    rest[d] //= f
                    cap //= f
    temporal: list[dict[str, int]] = [{} for _ in range(n)]
    for d in dims:
        left = rest[d]
        factors = []
        for _ in range(n - 1):
            f = rng.choice(_divisors(left))
            factors.append(f)
            left //= f
        factors.append(left)
        rng.shuffle(factors)
        for i, f in enumerate(factors):
            if f > 1:
                temporal[i][d] = f
    levels = []
    for i in range(n):
        perm = rng.sample(dims, len(dims))
        if rng.random() < 0.2:
            perm = perm[: rng.randrange(len(dims))]  # unlisted dims are outermost
        keep = ALL_DS if i == 0 else frozenset(ds for ds in sorted(ALL_DS) if rng.random() < 0.6)
        levels.append(LevelMapping(temporal[i], tuple(perm), spatial[i][0], spatial[i][1], (), keep))
    mapping = Mapping(tuple(levels))
    validate_mapping(mapping, arch, problem)
    return mapping


def random_case(seed: int) -> tuple[Problem, Arch, Mapping]:
    rng = random.Random(seed)
    problem = random_problem(rng)
    arch = random_arch(rng)
    return problem, arch, random_mapping(rng, problem, arch)


def reproducer(seed: int, problem: Problem, arch: Arch, mapping: Mapping) -> str:
    """Text that rebuilds a failing case."""
    meshes = [(l.name, l.mesh_x, l.mesh_y) for l in (*arch.levels, arch.compute)]
    return (f"seed={seed}\n{problem.to_yaml()}meshes={meshes}\n{mapping.to_yaml(arch, problem)}"
            f"raw mapping={mapping!r}")


def differences(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    """Every count where the model's dict differs from the oracle's."""
    diffs = []
    if got.get("computes") != expected["computes"]:
        diffs.append(f"computes: oracle {expected['computes']} model {got.get('computes')}")
    for level, exp_lvl in expected["levels"].items():
        got_lvl = got.get("levels", {}).get(level)
        if got_lvl is None:
            diffs.append(f"{level}: missing in model")
            continue
        for key in ("instances", "used_instances"):
            if got_lvl.get(key) != exp_lvl[key]:
                diffs.append(f"{level}.{key}: oracle {exp_lvl[key]} model {got_lvl.get(key)}")
        got_ds = got_lvl.get("dataspaces", {})
        if set(got_ds) != set(exp_lvl["dataspaces"]):
            diffs.append(f"{level}: data spaces oracle {sorted(exp_lvl['dataspaces'])} model {sorted(got_ds)}")
        for ds, exp in exp_lvl["dataspaces"].items():
            for key in FIELDS:
                value = got_ds.get(ds, {}).get(key)
                if value != exp[key]:
                    diffs.append(f"{level}.{ds}.{key}: oracle {exp[key]} model {value}")
            for key in FACTORS:
                value = got_ds.get(ds, {}).get(key)
                if value is None or not math.isclose(value, exp[key], rel_tol=1e-9):
                    diffs.append(f"{level}.{ds}.{key}: oracle {exp[key]} model {value}")
    return diffs


@pytest.mark.parametrize("seed", range(0, N_RANDOM, 6))
def test_oracle_invariants(seed: int) -> None:
    """Model-free checks of the oracle on random cases: MAC count, whole-tensor tiles at the
    outermost level, and multicast / spatial-reduction bounds between each keeper and its children."""
    problem, arch, mapping = random_case(seed)
    out = walk(problem, arch, mapping)
    assert out["computes"] == problem.macs
    n = len(arch.levels)
    top = out["levels"][arch.levels[0].name]["dataspaces"]
    for ds in problem.dataspaces:
        assert top[ds.name]["tile_size"] == problem.tile_size(ds)
        assert top[ds.name]["fills"] == 0
    # every output point reaches the outermost level at least once; only re-fetched points are read back
    assert top["Outputs"]["updates"] >= top["Outputs"]["tile_size"]
    assert top["Outputs"]["reads"] <= top["Outputs"]["updates"] - top["Outputs"]["tile_size"]
    instances = [out["levels"][l.name]["used_instances"] for l in arch.levels] + [
        math.prod(math.prod(l.spatial_x.values()) * math.prod(l.spatial_y.values()) for l in mapping.levels)]
    for ds in problem.dataspace_names:
        keepers = [c for c in range(n) if ds in mapping.levels[c].keep]
        for p, child in zip(keepers, keepers[1:] + [n]):
            parent = out["levels"][arch.levels[p].name]["dataspaces"][ds]
            fan = instances[child] // instances[p]
            if child == n:
                # one operand point / one output update per unit and step, shared at most by `fan` units
                key = "updates" if ds == "Outputs" else "reads"
                assert out["computes"] >= parent[key] >= out["computes"] // fan
                continue
            kid = out["levels"][arch.levels[child].name]["dataspaces"][ds]
            if ds == "Outputs":
                # each update of the parent is at least one child's outgoing point, read once to send it
                assert parent["updates"] <= kid["reads"]
            else:
                # multicast: the parent reads each point children receive at a step once, at most `fan` children
                assert parent["reads"] <= kid["fills"] <= parent["reads"] * fan


def _model_dict(problem: Problem, arch: Arch, mapping: Mapping) -> dict[str, Any]:
    """``mapper.model.evaluate(...).to_dict()`` under the exact analysis this oracle walks."""
    return evaluate(problem, dataclasses.replace(arch, nest_analysis="exact"), mapping).to_dict()


@pytest.mark.parametrize("seed", range(N_RANDOM))
def test_model_matches_oracle(seed: int) -> None:
    """mapper.model.evaluate agrees with the oracle on every count of a random case."""
    problem, arch, mapping = random_case(seed)
    diffs = differences(walk(problem, arch, mapping), _model_dict(problem, arch, mapping))
    assert not diffs, "\n".join(diffs) + "\n" + reproducer(seed, problem, arch, mapping)


@pytest.mark.parametrize("name", sorted(HAND_CASES))
def test_model_matches_oracle_on_hand_cases(name: str) -> None:
    problem, arch, mapping = HAND_CASES[name]()
    diffs = differences(walk(problem, arch, mapping), _model_dict(problem, arch, mapping))
    assert not diffs, "\n".join(diffs) + f"\nhand case {name}"


def test_random_cases_cover_the_brief() -> None:
    """The generator really produces strided/dilated convs, two spatial levels, bypass and tiny sizes."""
    cases = [random_case(s) for s in range(N_RANDOM)]
    assert all(p.macs <= MAX_MACS for p, _, _ in cases)
    convs = [p for p, _, _ in cases if p.name == "CNN-Layer"]
    strided = [p for p in convs if p.coefficients["Wstride"] == 2 and p.bounds["R"] > 1 and p.bounds["S"] > 1]
    assert len(strided) >= 30
    assert sum(1 for p in convs if p.coefficients["Wdilation"] > 1 or p.coefficients["Hdilation"] > 1) >= 20
    two_spatial = [m for _, _, m in cases
                   if sum(1 for l in m.levels if math.prod({**l.spatial_x, **l.spatial_y}.values()) > 1) >= 2]
    assert len(two_spatial) >= 60
    assert sum(1 for _, _, m in cases for l in m.levels[1:] if l.keep != ALL_DS) >= 200
    assert any(l.spatial_y for _, _, m in cases for l in m.levels)
