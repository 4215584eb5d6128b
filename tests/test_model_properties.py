"""Invariants of the analytical model on random mappings (hypothesis)."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.arch import arch_from_dict
from mapper.ert import EnergyTable
from mapper.mapspace import Mapspace
from mapper.model import evaluate_batch
from workloads.problem import conv2d, gemm

ARCH = arch_from_dict({"architecture": {"version": 0.4, "nodes": [
    {"_tag": "Component", "name": "DRAM", "class": "DRAM", "attributes": {"datawidth": 8, "width": 32}},
    {"_tag": "Component", "name": "GLB", "class": "SRAM", "attributes": {"datawidth": 8, "width": 8, "depth": 4096}},
    {"_tag": "Container", "name": "PE", "spatial": {"meshX": 4, "meshY": 2}},
    {"_tag": "Component", "name": "RF", "class": "RF", "attributes": {"datawidth": 8, "width": 8, "depth": 4096}},
    {"_tag": "Component", "name": "mac", "class": "intmac"},
]}})
ERT = EnergyTable({"DRAM": {"read": 100.0, "write": 100.0}, "GLB": {"read": 10.0, "write": 12.0},
                   "RF": {"read": 1.0, "write": 1.0}, "mac": {"mac": 2.0}})

def touched_points(problem, ds: str) -> int:
    """Distinct tensor points the computes touch (strides can leave gaps in the bounding box)."""
    count = 1
    for axis in problem.dataspace(ds).projection:
        ranges = [range(0, problem.coefficient(t) * problem.bounds[t.dim], problem.coefficient(t)) for t in axis]
        count *= len({sum(v) for v in itertools.product(*ranges)})
    return count


problems = st.one_of(
    st.builds(gemm, st.sampled_from([2, 4, 6, 8]), st.sampled_from([1, 2, 4]), st.sampled_from([2, 4, 8])),
    st.builds(lambda c, m, r, p, s: conv2d(1, c, m, r, 1, p, 1, stride=s),
              st.sampled_from([1, 2, 4]), st.sampled_from([2, 4]), st.sampled_from([1, 3]), st.sampled_from([2, 4]), st.sampled_from([1, 2])),
)


@settings(max_examples=40, deadline=None)
@given(problem=problems, seed=st.integers(0, 2**31 - 1))
def test_invariants_on_random_mappings(problem, seed: int) -> None:
    space = Mapspace(problem, ARCH)
    rng = np.random.default_rng(seed)
    keep = space.keep_patterns[int(rng.integers(len(space.keep_patterns)))]
    batch = space.sample(rng, 64, keep)
    ev = evaluate_batch(problem, ARCH, batch, ERT)
    c = ev.counts
    names = problem.dataspace_names
    lanes = c.used_instances[:, -1]
    # Every MAC happens exactly once: temporal steps x active lanes = MACs.
    assert np.all(c.compute_steps * lanes == problem.macs)
    assert np.all(ev.cycles >= problem.macs / ARCH.compute.instances)
    for j, ds in enumerate(names):
        size = problem.tile_size(ds)
        touched = touched_points(problem, ds)
        if problem.dataspace(ds).read_write:
            # Every output reaches DRAM at least once; updates never fall below the tensor.
            assert np.all(c.updates[:, 0, j] >= size)
        else:
            # Every operand element a MAC uses leaves DRAM at least once.
            assert np.all(c.reads[:, 0, j] >= touched)
        for i in range(len(ARCH.levels)):
            if ds in keep[i]:
                # A tile never exceeds the whole tensor; an instance's fills cover its tile at least once.
                assert np.all(c.tile[:, i, j] <= size)
                if i > 0 and not problem.dataspace(ds).read_write:
                    assert np.all(c.fills[:, i, j] >= c.tile[:, i, j] * c.used_instances[:, i])
    # Multicast never exceeds the number of children.
    assert np.all(c.multicast <= c.used_instances[:, -1, None, None] + 1e-9)
    # No bandwidth limits and one cycle per MAC step: cycles are the compute steps.
    assert np.array_equal(ev.cycles, c.compute_steps)
    # Energy recomputed by hand from the counts and the ERT (not from the model's parts).
    for b in range(batch.size):
        assert ev.energy_pJ[b] == pytest.approx(hand_energy(c, b, len(names)), rel=1e-12)


# ERT actions of each count (Timeloop's fallbacks: a fill and an update are priced as a write)
ACTION = {"reads": "read", "fills": "write", "updates": "write"}


def hand_energy(c, b: int, n_ds: int) -> float:
    """pJ of mapping ``b``: per level and data space, each used instance's vector accesses
    (ceil(per-instance words / block words); DRAM moves 4 words per access, GLB and RF 1) times
    the ERT energy, summed over used instances; plus 2 pJ per MAC (no leakage, no clusters)."""
    block = {"DRAM": 4, "GLB": 1, "RF": 1}
    total = Fraction(0)
    for i, lvl in enumerate(ARCH.levels):
        used = int(c.used_instances[b, i])
        for j in range(n_ds):
            for kind, action in ACTION.items():
                per_instance = int(getattr(c, kind)[b, i, j]) // used
                vectors = -(-per_instance // block[lvl.name])          # ceil
                total += used * vectors * Fraction(ERT.energy(lvl.path, lvl.name, action))
    macs = int(c.compute_steps[b]) * int(c.used_instances[b, -1])
    return float(total + 2 * macs)
