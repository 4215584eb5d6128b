"""Timeloop's counting (the default ``nest_analysis``): the closed form in mapper/nest_timeloop.py
against the explicit walker tests/timeloop_oracle.py, and hand cases for each rule A-G of
docs/nest_analysis.md ("Timeloop semantics"). Real Timeloop outputs: test_timeloop_conformance.py.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any

import pytest

from oracle import walk
from test_nest_oracle import ALL_DS, arch_dict, lm, random_case, reproducer
from timeloop_oracle import timeloop_walk
from mapper.arch import Arch, arch_from_dict
from mapper.ert import EnergyTable
from mapper.mapping import LevelMapping, Mapping, validate_mapping
from mapper.model import evaluate
from workloads.problem import Problem, conv2d, gemm

N_RANDOM = 250
N_SYSTOLIC = 120


def _counts(problem: Problem, arch: Arch, mapping: Mapping, analysis: str = "timeloop") -> dict[str, Any]:
    return evaluate(problem, dataclasses.replace(arch, nest_analysis=analysis), mapping, check_capacity=False).to_dict()


def _per_instance(result: dict[str, Any], level: str, ds: str) -> tuple:
    v = result["levels"][level]["dataspaces"][ds]
    return v["reads_per_instance"], v["fills_per_instance"], v["updates_per_instance"], v["link_transfers_per_instance"]


def _differences(problem: Problem, arch: Arch, mapping: Mapping) -> list[str]:
    """Every count where the closed form differs from the Timeloop walker."""
    expected = timeloop_walk(problem, arch, mapping)
    got = _counts(problem, arch, mapping)
    diffs = [] if got["computes"] == expected["computes"] else [f"computes {got['computes']} != {expected['computes']}"]
    if got["compute_cycles"] != expected["cycles"]:
        diffs.append(f"cycles {got['compute_cycles']} != {expected['cycles']}")
    for level, exp in expected["levels"].items():
        mine = got["levels"][level]
        if mine["used_instances"] != exp["used_instances"]:
            diffs.append(f"{level}.used_instances {mine['used_instances']} != {exp['used_instances']}")
        if set(mine["dataspaces"]) != set(exp["dataspaces"]):
            diffs.append(f"{level}: data spaces {sorted(mine['dataspaces'])} != {sorted(exp['dataspaces'])}")
            continue
        for ds, e in exp["dataspaces"].items():
            m = mine["dataspaces"][ds]
            for key in ("reads_per_instance", "fills_per_instance", "updates_per_instance", "tile_size"):
                if m[key] != e[key]:
                    diffs.append(f"{level}.{ds}.{key}: walker {e[key]} closed form {m[key]}")
            if not math.isclose(m["link_transfers_per_instance"], e["link_transfers_per_instance"], abs_tol=1e-9):
                diffs.append(f"{level}.{ds}.link_transfers: walker {e['link_transfers_per_instance']} "
                             f"closed form {m['link_transfers_per_instance']}")
    return diffs


# ---- closed form == walker ----------------------------------------------------------------

@pytest.mark.parametrize("seed", range(N_RANDOM))
def test_closed_form_matches_walker(seed: int) -> None:
    """GEMM, BMM, strided/dilated conv and depthwise on 3-level archs with fanouts and bypass."""
    problem, arch, mapping = random_case(seed)
    diffs = _differences(problem, arch, mapping)
    assert not diffs, "\n".join(diffs) + "\n" + reproducer(seed, problem, arch, mapping)


def systolic_case(seed: int) -> tuple[Problem, Arch, Mapping]:
    """1-D/2-D convolutions whose sliding dimensions (P, Q) are spread over PEs while the window
    dimensions (R, S) or others run in time above them: the tiles of neighbouring PEs follow each
    other, so Timeloop's link transfers between PEs appear (and sometimes pay off)."""
    rng = random.Random(10_000 + seed)
    dims = dict(N=1, C=rng.choice([1, 2]), M=rng.choice([1, 2]), R=rng.choice([2, 3, 4]), S=rng.choice([1, 2]),
                P=rng.choice([4, 6, 8]), Q=rng.choice([1, 2, 4]))
    problem = conv2d(stride=rng.choice([1, 1, 2]), dilation=rng.choice([1, 1, 2]), **dims)
    reg = rng.choice([(4, 1), (2, 2), (8, 1), (4, 2)])
    mac = rng.choice([(1, 1), (2, 1), (1, 2)])
    arch = arch_from_dict(arch_dict((1, 1), reg, mac), "<systolic arch>")
    rest = dict(problem.bounds)
    sx: dict[str, int] = {}
    sy: dict[str, int] = {}
    for table, cap, choices in ((sx, reg[0], ["P", "Q", "M"]), (sy, reg[1], ["Q", "R", "C"])):
        for d in rng.sample(choices, len(choices)):
            options = [f for f in range(2, cap + 1) if rest[d] % f == 0 and cap % f == 0 and d not in sx and d not in sy]
            if options and rng.random() < 0.8:
                f = rng.choice(options)
                table[d], rest[d], cap = f, rest[d] // f, cap // f
    mac_x: dict[str, int] = {}
    for d in rng.sample(["M", "C", "S"], 3):
        options = [f for f in range(2, mac[0] * mac[1] + 1) if rest[d] % f == 0 and (mac[0] * mac[1]) % f == 0]
        if options and not mac_x and rng.random() < 0.5:
            mac_x[d] = rng.choice(options)
            rest[d] //= mac_x[d]
    temporal: list[dict[str, int]] = [{}, {}, {}]
    for d, left in rest.items():
        for i in (1, 2, 0):
            f = rng.choice([x for x in range(1, left + 1) if left % x == 0])
            if f > 1:
                temporal[i][d] = temporal[i].get(d, 1) * f
            left //= f
        if left > 1:
            temporal[0][d] = temporal[0].get(d, 1) * left
    window_inner = ["R", "S"] + rng.sample([d for d in problem.dims if d not in ("R", "S")], len(problem.dims) - 2)
    keep_reg = frozenset(d for d in sorted(ALL_DS) if rng.random() < 0.7)
    levels = (
        LevelMapping(temporal[0], tuple(rng.sample(list(problem.dims), len(problem.dims))), {}, {}, (), ALL_DS),
        LevelMapping(temporal[1], tuple(window_inner), sx, sy, (), frozenset(d for d in sorted(ALL_DS) if rng.random() < 0.8)),
        LevelMapping(temporal[2], tuple(rng.sample(list(problem.dims), len(problem.dims))),
                     mac_x if mac[0] > 1 else {}, mac_x if mac[0] == 1 and mac[1] > 1 else {}, (), keep_reg),
    )
    mapping = Mapping(levels)
    validate_mapping(mapping, arch, problem)
    return problem, arch, mapping


@pytest.mark.parametrize("seed", range(N_SYSTOLIC))
def test_closed_form_matches_walker_on_systolic_flows(seed: int) -> None:
    problem, arch, mapping = systolic_case(seed)
    diffs = _differences(problem, arch, mapping)
    assert not diffs, "\n".join(diffs) + "\n" + reproducer(seed, problem, arch, mapping)


def test_generators_exercise_link_transfers() -> None:
    """The random families really reach link transfers at a storage level and at the MACs."""
    storage = compute = 0
    for seed in range(N_SYSTOLIC):
        result = _counts(*systolic_case(seed))
        storage += any(v["link_transfers"] > 0 for v in result["levels"]["Buffer"]["dataspaces"].values())
        compute += any(v["link_transfers"] > 0 for v in result["levels"]["Reg"]["dataspaces"].values())
    assert storage >= 12 and compute >= 12, (storage, compute)


# ---- hand cases, one per rule -------------------------------------------------------------

def test_A_no_read_when_outputs_drain() -> None:
    """GEMM M=N=K=8; Buffer walks M8 x N8, Reg holds one output while K=8 runs inside it.

    Reg Outputs: 512 MAC updates; reads skip the first read of each point of the Reg's
    partition (64 outputs): 512 - 64 = 448; the 64 outputs leaving for the Buffer are not read
    (tiling.cpp ComputeReadUpdateReductionAccesses_Legacy). The Buffer only passes its 64
    outputs on to DRAM: 64 updates, 64 - 64 = 0 reads. The exact analysis adds a read per
    point that leaves a level: 512 and 64.
    """
    args = (gemm(M=8, N=8, K=8), arch_from_dict(arch_dict()), Mapping((lm(), lm({"M": 8, "N": 8}, "NM"), lm({"K": 8}, "K"))))
    tl, exact = _counts(*args), _counts(*args, analysis="exact")
    assert _per_instance(tl, "Reg", "Outputs") == (448, 0, 512, 0.0)
    assert _per_instance(tl, "Buffer", "Outputs") == (0, 0, 64, 0.0)
    assert _per_instance(tl, "DRAM", "Outputs") == (0, 0, 64, 0.0)
    assert _per_instance(exact, "Reg", "Outputs")[:3] == (512, 0, 512)
    assert _per_instance(exact, "Buffer", "Outputs")[:3] == (64, 0, 64)


def test_B_reuse_only_while_the_stride_repeats() -> None:
    """1-D conv R=3, P=6 (Inputs w = p + r, 8 points), M=2; P = 3 x p0 (DRAM) + p1 (Buffer),
    Buffer loop order p1 outside m; the Reg holds the 3-point window of one p.

    Timeloop runs each loop at iterations 0 and 1 (the second weighted by bound - 1). Calls to
    the Reg window: m increments (6 of them) do not move it (zero translation, not recorded as
    a stride: Translation fix #297); p1 increments (4) move it by +1 -> 1 new point each; the
    p0 increment wraps p1 from its *iteration 1* back to 0: translation 3 - 1 = +2, not the
    stride +1 -> the whole window again (3). Fills 3 + 4 x 1 + 3 = 10 = Buffer Inputs reads.
    The exact analysis slides continuously: 3 + 5 = 8.
    """
    args = (conv2d(N=1, C=1, M=2, R=3, S=1, P=6, Q=1), arch_from_dict(arch_dict()),
            Mapping((lm({"P": 2}, "P"), lm({"P": 3, "M": 2}, "MP"), lm({"R": 3}, "R"))))
    assert _per_instance(_counts(*args), "Reg", "Inputs")[:2] == (36, 10)
    assert _per_instance(_counts(*args), "Buffer", "Inputs")[0] == 10
    assert _per_instance(_counts(*args, analysis="exact"), "Reg", "Inputs")[:2] == (36, 8)


def test_C_multicast_only_for_identical_deltas() -> None:
    """1-D conv R=3, P=2 spread over 2 Regs (one p each); each Reg holds its 3-point window.

    The windows {0,1,2} and {1,2,3} overlap but are not equal: the Buffer reads each in full,
    6 (``ComputeAccurateMulticastedAccesses`` / ``CheckEquality``); the exact analysis reads
    their union, 4. Weights (R only) are equal for both Regs: 3 reads, multicast 2.
    """
    args = (conv2d(N=1, C=1, M=1, R=3, S=1, P=2, Q=1), arch_from_dict(arch_dict(reg_fanout=(2, 1))),
            Mapping((lm(), lm(sx={"P": 2}), lm({"R": 3}, "R"))))
    tl = _counts(*args)
    assert _per_instance(tl, "Buffer", "Inputs")[0] == 6
    assert tl["levels"]["Buffer"]["dataspaces"]["Weights"]["reads"] == 3
    assert tl["levels"]["Buffer"]["dataspaces"]["Weights"]["multicast"] == 2.0
    assert _per_instance(_counts(*args, analysis="exact"), "Buffer", "Inputs")[0] == 4


def test_D_link_transfers_between_neighbours() -> None:
    """1-D conv R=3, P=4 over 4 Regs in a row (meshX 4); the Buffer runs r in time above them;
    each Reg holds one input w = p + r.

    First call (r=0): PE p needs w=p, 4 Buffer reads. The r=1 call (standing for r=1,2: weight
    2) moves every window by +1: PE p needs w=p+1, which its right neighbour held at the
    previous call; PEs 0-2 take it over the link, PE 3 reads it. Reads with links 1 < 4 without,
    so links are used (``ComputeNetworkLinkTransfers``): Buffer reads 4 + 2 x 1 = 6, link
    transfers 2 x 3 = 6. Per Reg: fills = share (Buffer deliveries 4 + 2 = 6 over 4 PEs = 1.5)
    + peer fills 6 / 4 = 1.5 -> 3; reads = 3 MAC reads + 1.5 peer reads (sending to the
    neighbour) -> round(4.5) = 5 (tiling.cpp ComputePeerAccesses). The exact analysis reads
    the 4 new points at every one of the 3 steps: 12.
    """
    args = (conv2d(N=1, C=1, M=1, R=3, S=1, P=4, Q=1), arch_from_dict(arch_dict(reg_fanout=(4, 1))),
            Mapping((lm(), lm({"R": 3}, "R", sx={"P": 4}), lm())))
    tl = _counts(*args)
    assert _per_instance(tl, "Buffer", "Inputs") == (6, 6, 0, 6.0)
    assert _per_instance(tl, "Reg", "Inputs") == (5, 3, 0, 0.0)
    assert _per_instance(tl, "Buffer", "Weights")[3] == 0.0   # every PE needs the same weight: multicast
    assert _per_instance(_counts(*args, analysis="exact"), "Buffer", "Inputs")[0] == 12
    priced = _counts(*args)
    ert = EnergyTable({"DRAM": {"read": 1, "write": 1}, "Buffer": {"read": 1, "write": 1, "link_transfer": 0.25},
                       "Reg": {"read": 1, "write": 1}, "MAC": {"mac": 1}})
    priced = evaluate(args[0], args[1], args[2], ert=ert, check_capacity=False).to_dict()
    assert priced["levels"]["Buffer"]["network_energy_pJ"] == pytest.approx(6 * 0.25)


LEAK_ARCH = {"architecture": {"version": 0.4, "nodes": [
    {"_tag": "Component", "name": "DRAM", "class": "DRAM", "attributes": {"datawidth": 8, "width": 8}},
    {"_tag": "Component", "name": "Buffer", "class": "SRAM", "attributes": {"datawidth": 8, "width": 8, "depth": 4096}},
    {"_tag": "Container", "name": "PE", "spatial": {"meshX": 4}},
    {"_tag": "Component", "name": "Reg", "class": "regfile",
     "attributes": {"datawidth": 8, "width": 32, "block_size": 1, "depth": 64}},
    {"_tag": "Component", "name": "MAC", "class": "intmac"},
]}}


def test_E_F_leakage_of_used_instances_and_no_compute_leakage() -> None:
    """GEMM M=2, N=2, K=2 on 2 of the 4 PEs (spatial M2): 4 compute steps, 8 MACs.

    E: Reg leaks 0.5 pJ/cycle per instance, Buffer 2: leakage = leak x cycles x *utilized*
    instances (buffer.cpp ComputeLeaksPerCycle): Reg 0.5 x 4 x 2 = 4 (not x 4 instances),
    Buffer 2 x 4 x 1 = 8. F: the MAC's ERT has a leak entry; compute energy is computes x
    E(mac) only (arithmetic.cpp): 8 x 1.5 = 12.
    """
    ert = EnergyTable({"DRAM": {"read": 0, "write": 0}, "Buffer": {"read": 0, "write": 0, "leak": 2.0},
                       "Reg": {"read": 0, "write": 0, "leak": 0.5}, "MAC": {"mac": 1.5, "leak": 100.0}})
    arch = arch_from_dict(LEAK_ARCH)
    result = evaluate(gemm(M=2, N=2, K=2), arch, Mapping((lm(), lm(sx={"M": 2}), lm({"N": 2, "K": 2}, "KN"))),
                      ert=ert).to_dict()
    assert result["cycles"] == 4
    assert result["levels"]["Reg"]["leak_energy_pJ"] == pytest.approx(4.0)
    assert result["levels"]["Buffer"]["leak_energy_pJ"] == pytest.approx(8.0)
    assert result["compute"]["energy_pJ"] == pytest.approx(12.0)
    assert result["energy_pJ"] == pytest.approx(24.0)


def test_G_cluster_size_shares_an_access() -> None:
    """Reg: width 32 bits, datawidth 8, block_size 1 -> cluster_size 4 (buffer.cpp ParseSpecs):
    the 4 PE registers are one 32-bit-wide array. GEMM M=4, N=2, K=2 on all 4 PEs.

    Per Reg: Weights 4 reads + 2 fills, Inputs 4 + 4, Outputs 4 updates + 2 reads, 0 fills
    -> 20 vector accesses (block 1). The 4 used instances share 1 used cluster, so each pays
    E / 4 per access (FinalizeBufferEnergy): 20 x 4 x (1 pJ / 4) = 20 pJ, not 80.
    """
    arch = arch_from_dict(LEAK_ARCH)
    assert arch.levels[2].cluster_size == 4 and arch.levels[2].block_size == 1
    ert = EnergyTable({"DRAM": {"read": 0, "write": 0}, "Buffer": {"read": 0, "write": 0},
                       "Reg": {"read": 1.0, "write": 1.0}, "MAC": {"mac": 0}})
    result = evaluate(gemm(M=4, N=2, K=2), arch, Mapping((lm(), lm(sx={"M": 4}), lm({"N": 2, "K": 2}, "KN"))),
                      ert=ert).to_dict()
    reg = result["levels"]["Reg"]["dataspaces"]
    accesses = sum(v["reads_per_instance"] + v["fills_per_instance"] + v["updates_per_instance"] for v in reg.values())
    assert accesses == 20
    assert result["levels"]["Reg"]["energy_pJ"] == pytest.approx(20.0)


def test_exact_analysis_is_the_brute_force_walk() -> None:
    """The switch really selects the other semantics: under ``exact`` the model equals the
    brute-force walker (tests/oracle.py) where the Timeloop walker differs (case A)."""
    args = (gemm(M=8, N=8, K=8), arch_from_dict(arch_dict()), Mapping((lm(), lm({"M": 8, "N": 8}, "NM"), lm({"K": 8}, "K"))))
    brute = walk(*args)["levels"]["Reg"]["dataspaces"]["Outputs"]
    assert _per_instance(_counts(*args, analysis="exact"), "Reg", "Outputs")[0] == brute["reads"]
    assert timeloop_walk(*args)["levels"]["Reg"]["dataspaces"]["Outputs"]["reads_per_instance"] != brute["reads"]
