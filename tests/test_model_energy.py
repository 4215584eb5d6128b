"""Energy paths of mapper/model.py derived by hand: leakage over the utilized instances for the
whole run (bandwidth-bound cycles included), vector accesses rounded up per instance (counts
that are not multiples of the block, whole words and compressed fractional words), and the
ERT actions each count is priced with.

One layer throughout: GEMM M=3, N=2, K=5 (Outputs[M,N] += Weights[M,K] x Inputs[K,N]) on
DRAM -> Buffer (1 instance) -> 4 PEs (meshX 4) of Reg -> MAC. The Buffer spreads M=3 over 3 of
the 4 PEs; each Reg runs N=2 (outer) x K=5 (inner): 10 compute steps, 30 MACs.

Counts (Timeloop semantics, docs/nest_analysis.md), per Buffer instance (there is one):
* Weights: each PE needs its own 5 weights W[m, :]: 15 reads (no multicast), 15 fills;
* Inputs: every PE needs the same 10 inputs: 10 reads (multicast 3), 10 fills;
* Outputs: 6 updates (2 per PE); no reads (the first read of each output is elided), no fills.
Buffer reads = 25 words.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from mapper.arch import arch_from_dict
from mapper.ert import EnergyTable
from mapper.mapping import LevelMapping, Mapping
from mapper.model import BitLevelModels, DenseMAC, evaluate
from workloads.problem import gemm
from workloads.yamlio import InputError

ALL = frozenset({"Weights", "Inputs", "Outputs"})
PROBLEM = gemm(M=3, N=2, K=5)
MAPPING = Mapping((
    LevelMapping({}, (), {}, {}, (), ALL),
    LevelMapping({}, (), {"M": 3}, {}, (), ALL),
    LevelMapping({"N": 2, "K": 5}, ("K", "N"), {}, {}, (), ALL),
))


def _arch(buffer: dict[str, Any]) -> Any:
    return arch_from_dict({"architecture": {"version": 0.4, "nodes": [
        {"_tag": "Component", "name": "DRAM", "class": "DRAM", "attributes": {"datawidth": 8, "width": 8}},
        {"_tag": "Component", "name": "Buffer", "class": "SRAM", "attributes": {"datawidth": 8, "depth": 4096, **buffer}},
        {"_tag": "Container", "name": "PE", "spatial": {"meshX": 4}},
        {"_tag": "Component", "name": "Reg", "class": "regfile", "attributes": {"datawidth": 8, "width": 8, "depth": 64}},
        {"_tag": "Component", "name": "MAC", "class": "intmac"},
    ]}})


def _zero_ert(**override: dict[str, float]) -> EnergyTable:
    table = {"DRAM": {"read": 0.0, "write": 0.0}, "Buffer": {"read": 0.0, "write": 0.0},
             "Reg": {"read": 0.0, "write": 0.0}, "MAC": {"mac": 0.0}}
    table.update(override)
    return EnergyTable(table)


def test_the_counts_the_derivations_below_use() -> None:
    result = evaluate(PROBLEM, _arch({"width": 8}), MAPPING).to_dict()
    buf = result["levels"]["Buffer"]["dataspaces"]
    per = {ds: (v["reads_per_instance"], v["fills_per_instance"], v["updates_per_instance"]) for ds, v in buf.items()}
    assert per == {"Weights": (15, 15, 0), "Inputs": (10, 10, 0), "Outputs": (0, 0, 6)}
    assert result["levels"]["Reg"]["used_instances"] == 3 and result["compute_cycles"] == 10


def test_leakage_is_paid_by_the_used_instances_for_every_cycle_of_the_run() -> None:
    """Buffer read bandwidth 1 word/cycle: its 25 reads make the run 25 cycles (compute: 10).

    Reg leaks 0.5 pJ/cycle per instance: 0.5 x 3 used (not 4 instances) x 25 cycles (not 10)
    = 37.5; Buffer 2 pJ/cycle: 2 x 1 x 25 = 50; DRAM 0.1: 0.1 x 1 x 25 = 2.5. The MAC's leak
    entry is not charged (arithmetic.cpp prices computes only): the total is the leakage alone.
    """
    ert = _zero_ert(DRAM={"read": 0.0, "write": 0.0, "leak": 0.1}, Buffer={"read": 0.0, "write": 0.0, "leak": 2.0},
                    Reg={"read": 0.0, "write": 0.0, "leak": 0.5}, MAC={"mac": 0.0, "leak": 1000.0})
    result = evaluate(PROBLEM, _arch({"width": 8, "read_bandwidth": 1}), MAPPING, ert=ert).to_dict()
    assert result["cycles"] == 25
    leak = {name: lvl["leak_energy_pJ"] for name, lvl in result["levels"].items()}
    assert leak == pytest.approx({"DRAM": 2.5, "Buffer": 50.0, "Reg": 37.5}, rel=1e-12)
    assert result["compute"]["energy_pJ"] == 0.0
    assert result["energy_pJ"] == pytest.approx(90.0, rel=1e-12)
    assert (result["valid"], result["edp_pJ_cycles"]) == (True, pytest.approx(90.0 * 25, rel=1e-12))
    assert "seconds" not in result
    # at 500 MHz the 25 cycles take 50 ns: EDP 90e-12 J x 50e-9 s
    timed = evaluate(PROBLEM, _arch({"width": 8, "read_bandwidth": 1}), MAPPING, ert=ert, clock_MHz=500.0).to_dict()
    assert timed["seconds"] == pytest.approx(50e-9, rel=1e-12, abs=0)
    assert timed["edp_J_s"] == pytest.approx(90e-12 * 50e-9, rel=1e-12, abs=0)


BUFFER_ERT = {"read": 1.0, "write": 10.0, "update": 100.0}


def test_vector_accesses_round_up_per_data_space() -> None:
    """Buffer 32 bits wide = 4 words per access. Per data space, ceil(words / 4): reads
    Weights 15 -> 4, Inputs 10 -> 3; fills 15 -> 4, 10 -> 3; updates Outputs 6 -> 2.
    Fills are priced as writes (no ``fill`` entry), updates with their own entry:
    1 x (4 + 3) + 10 x (4 + 3) + 100 x 2 = 277 pJ (rounding down would give 155)."""
    result = evaluate(PROBLEM, _arch({"width": 32}), MAPPING, ert=_zero_ert(Buffer=BUFFER_ERT)).to_dict()
    buf = result["levels"]["Buffer"]
    vectors = {ds: (v["vector_reads_per_instance"], v["vector_fills_per_instance"], v["vector_updates_per_instance"])
               for ds, v in buf["dataspaces"].items()}
    assert vectors == {"Weights": (4, 4, 0), "Inputs": (3, 3, 0), "Outputs": (0, 0, 2)}
    assert buf["energy_pJ"] == pytest.approx(277.0, rel=1e-12)
    assert result["energy_pJ"] == pytest.approx(277.0, rel=1e-12)


class SixBits:
    """A stored format of 6 bits per element (metadata included) for every data space."""

    def bits_per_element(self, dataspace: str) -> float:
        return 6.0


def test_compressed_words_are_fractional_and_round_up() -> None:
    """The Buffer stores the 6-bit format: an element is 6/8 of a word. Weights 15 elements ->
    11.25 words -> ceil(11.25 / 4) = 3 accesses (floor: 2); Inputs 10 -> 7.5 words -> 2;
    Outputs 6 -> 4.5 words -> 2. Energy 1 x (3 + 2) + 10 x (3 + 2) + 100 x 2 = 255 pJ.
    The Reg keeps whole words (it is not a format level)."""
    models = BitLevelModels(formats=SixBits(), format_levels=frozenset({"Buffer"}))
    result = evaluate(PROBLEM, _arch({"width": 32}), MAPPING, ert=_zero_ert(Buffer=BUFFER_ERT), models=models).to_dict()
    buf = result["levels"]["Buffer"]
    vectors = {ds: (v["vector_reads_per_instance"], v["vector_fills_per_instance"], v["vector_updates_per_instance"])
               for ds, v in buf["dataspaces"].items()}
    assert vectors == {"Weights": (3, 3, 0), "Inputs": (2, 2, 0), "Outputs": (0, 0, 2)}
    assert buf["energy_pJ"] == pytest.approx(255.0, rel=1e-12)
    reg = result["levels"]["Reg"]["dataspaces"]["Weights"]
    assert reg["vector_reads_per_instance"] == reg["reads_per_instance"] == 10


# ---- link transfers, clusters, capacity -----------------------------------------------------------

def _link_case(buffer_attrs: dict[str, Any], buffer_ert: dict[str, float],
               buffer_key: str = "Buffer", decoy: dict[str, Any] | None = None) -> dict[str, Any]:
    """Hand case D of test_nest_timeloop.py: 1-D conv R=3, P=4 over 4 Regs in a row; the Buffer
    runs r in time above them, so 6 inputs move between neighbouring Regs over the links.
    ``decoy``: ERT tables listed before the Buffer's (own key ``buffer_key``)."""
    from test_nest_oracle import arch_dict, lm
    from workloads.problem import conv2d

    spec = arch_dict(reg_fanout=(4, 1))
    buf = next(n for n in spec["architecture"]["nodes"] if n["name"] == "Buffer")
    buf["attributes"].update(buffer_attrs)
    ert = EnergyTable({"DRAM": {"read": 0, "write": 0}, **(decoy or {}), buffer_key: {"read": 0, "write": 0, **buffer_ert},
                       "Reg": {"read": 0, "write": 0}, "MAC": {"mac": 0}})
    mapping = Mapping((lm(), lm({"R": 3}, "R", sx={"P": 4}), lm()))
    return evaluate(conv2d(N=1, C=1, M=1, R=3, S=1, P=4, Q=1), arch_from_dict(spec), mapping, ert=ert,
                    check_capacity=False).to_dict()


def test_link_energy_from_timeloops_network_attributes() -> None:
    """Without an ERT ``link_transfer`` entry a word over a link costs energy_per_hop + 2 x
    router_energy (network-legacy.cpp): 0.5 + 2 x 0.125 = 0.75 pJ x 6 transfers = 4.5 pJ."""
    result = _link_case({"energy_per_hop": 0.5, "router_energy": 0.125}, {})
    buf = result["levels"]["Buffer"]
    assert buf["dataspaces"]["Inputs"]["link_transfers"] == 6.0
    assert buf["network_energy_pJ"] == pytest.approx(4.5, rel=1e-12)
    assert buf["dataspaces"]["Inputs"]["network_energy_pJ"] == pytest.approx(4.5, rel=1e-12)
    assert result["energy_pJ"] == pytest.approx(4.5, rel=1e-12)
    assert result["valid"] is True


def test_link_energy_prefers_the_ert_and_defaults_to_zero() -> None:
    """An ERT ``link_transfer`` entry wins over the attributes (6 x 0.25 = 1.5 pJ); with neither,
    links are free (Timeloop's default network)."""
    assert _link_case({"energy_per_hop": 0.5, "router_energy": 0.125}, {"link_transfer": 0.25})[
        "levels"]["Buffer"]["network_energy_pJ"] == pytest.approx(1.5, rel=1e-12)
    assert _link_case({}, {})["levels"]["Buffer"]["network_energy_pJ"] == 0.0


def test_link_energy_is_looked_up_by_the_full_path() -> None:
    """The Buffer's own table (system.chip.Buffer, 0.25 pJ) wins over another component named
    Buffer listed first (9 pJ): 6 x 0.25 = 1.5 pJ."""
    decoy = {"system.elsewhere.Buffer": {"read": 0, "write": 0, "link_transfer": 9.0}}
    result = _link_case({}, {"link_transfer": 0.25}, buffer_key="system.chip.Buffer", decoy=decoy)
    assert result["levels"]["Buffer"]["network_energy_pJ"] == pytest.approx(1.5, rel=1e-12)


def test_used_clusters_share_an_access() -> None:
    """Reg 16 bits wide, datawidth 8, block_size 1: clusters of 2 Regs share one 16-bit array
    (buffer.cpp ParseSpecs); 4 Regs = 2 clusters. M=3 uses 3 Regs, i.e. both clusters
    (min(3 used, 2 clusters)); the 3 used Regs share the 2 clusters' accesses: each used
    instance pays E x 2/3 per access, so the level pays for 2 of every 3 instance accesses.
    Per Reg (N=2 x K=5): Weights 10 reads + 5 fills, Inputs 10 + 10, Outputs 10 updates + 8 reads
    (first read of its 2 outputs elided) = 53 accesses; 53 x 3 Regs x 2/3 x 1 pJ = 106 pJ."""
    spec = {"architecture": {"version": 0.4, "nodes": [
        {"_tag": "Component", "name": "DRAM", "class": "DRAM", "attributes": {"datawidth": 8, "width": 8}},
        {"_tag": "Component", "name": "Buffer", "class": "SRAM", "attributes": {"datawidth": 8, "width": 8, "depth": 4096}},
        {"_tag": "Container", "name": "PE", "spatial": {"meshX": 4}},
        {"_tag": "Component", "name": "Reg", "class": "regfile",
         "attributes": {"datawidth": 8, "width": 16, "block_size": 1, "depth": 64}},
        {"_tag": "Component", "name": "MAC", "class": "intmac"},
    ]}}
    arch = arch_from_dict(spec)
    assert (arch.levels[2].cluster_size, arch.levels[2].instances) == (2, 4)
    result = evaluate(PROBLEM, arch, MAPPING, ert=_zero_ert(Reg={"read": 1.0, "write": 1.0})).to_dict()
    regs = result["levels"]["Reg"]
    per_reg = sum(v["reads_per_instance"] + v["fills_per_instance"] + v["updates_per_instance"]
                  for v in regs["dataspaces"].values())
    assert (per_reg, regs["used_instances"]) == (53, 3)
    assert regs["energy_pJ"] == pytest.approx(106.0, rel=1e-12)


def test_capacity_error_names_the_level_and_the_bits() -> None:
    """A 16-entry Buffer cannot hold the 15 weights + 10 inputs + 6 outputs it keeps (31 x 8 bits)."""
    arch = _arch({"width": 8, "depth": 16})
    with pytest.raises(InputError) as info:
        evaluate(PROBLEM, arch, MAPPING, source="map.yaml")
    assert (info.value.source, info.value.key) == ("map.yaml", "Buffer")
    assert info.value.expected == ("tiles need 248 bits (Weights 15 x 8 bits, Inputs 10 x 8 bits, Outputs 6 x 8 bits) "
                                   "but Buffer holds 128 bits per instance")
    assert evaluate(PROBLEM, arch, MAPPING, check_capacity=False).to_dict()["valid"] is False


def test_dense_mac_work_model() -> None:
    """One cycle and one ``mac`` action per MAC, whatever the lane count; described as such."""
    work = DenseMAC()
    lanes = np.array([1, 3, 16])
    assert np.array_equal(work.cycles_per_step(lanes), [1.0, 1.0, 1.0])
    assert {k: v.tolist() for k, v in work.actions_per_mac(lanes).items()} == {"mac": [1.0, 1.0, 1.0]}
    assert (work.family, work.group_lanes) == ("dense", 1)
    assert work.describe() == {"family": "dense", "source": "analytical: 1 cycle per MAC"}


def _spec(buffer: dict[str, Any], reg: dict[str, Any], pes: int = 4) -> dict[str, Any]:
    return {"architecture": {"version": 0.4, "nodes": [
        {"_tag": "Component", "name": "DRAM", "class": "DRAM", "attributes": {"datawidth": 8, "width": 8}},
        {"_tag": "Component", "name": "Buffer", "class": "SRAM", "attributes": {"datawidth": 8, **buffer}},
        {"_tag": "Container", "name": "PE", "spatial": {"meshX": pes}},
        {"_tag": "Component", "name": "Reg", "class": "regfile", "attributes": {"datawidth": 8, **reg}},
        {"_tag": "Component", "name": "MAC", "class": "intmac"},
    ]}}


def test_capacity_error_names_the_first_level_that_overflows_not_one_exactly_full() -> None:
    """Buffer 31 entries = 248 bits holds its 31 kept elements exactly; each Reg keeps 5 weights,
    10 inputs and 2 outputs (17 x 8 = 136 bits) in 16 entries (128 bits): the Reg is named."""
    arch = arch_from_dict(_spec({"width": 8, "depth": 31}, {"width": 8, "depth": 16}))
    with pytest.raises(InputError) as info:
        evaluate(PROBLEM, arch, MAPPING, source="map.yaml")
    assert (info.value.key, info.value.expected) == (
        "Reg", "tiles need 136 bits (Weights 5 x 8 bits, Inputs 10 x 8 bits, Outputs 2 x 8 bits) but Reg holds 128 bits per instance")


def test_capacity_error_counts_only_the_kept_tiles() -> None:
    """A Buffer that bypasses Outputs needs 15 + 10 elements = 200 bits; it holds 16 x 8 = 128."""
    bypass = Mapping((MAPPING.levels[0], dataclasses.replace(MAPPING.levels[1], keep=frozenset({"Weights", "Inputs"})),
                      MAPPING.levels[2]))
    with pytest.raises(InputError) as info:
        evaluate(PROBLEM, _arch({"width": 8, "depth": 16}), bypass, source="map.yaml")
    assert (info.value.key, info.value.expected) == (
        "Buffer", "tiles need 200 bits (Weights 15 x 8 bits, Inputs 10 x 8 bits) but Buffer holds 128 bits per instance")


def test_json_counts_are_integers() -> None:
    """Access counts, per-instance counts, tiles and vector accesses are whole numbers in model.json."""
    result = evaluate(PROBLEM, _arch({"width": 32}), MAPPING, ert=_zero_ert()).to_dict()
    for level in result["levels"].values():
        assert type(level["used_instances"]) is int
        for values in level["dataspaces"].values():
            for key in ("reads", "fills", "updates", "tile_size"):
                for name in (key, f"{key}_per_instance", f"vector_{key}_per_instance"):
                    if name in values:
                        assert type(values[name]) is int, name
    assert result["levels"]["Buffer"]["dataspaces"]["Weights"]["reads_per_instance"] == 15


def test_compute_units_used_and_energy_per_mac() -> None:
    """2 MACs under one Reg (the Reg level spreads M=2 over them): 2 compute units used, 1 Reg.
    A MAC costs 3 pJ and nothing else costs energy: 8 MACs, 24 pJ, 3 pJ per MAC; a one-MAC
    problem costs 3 pJ in all and per MAC."""
    from test_nest_oracle import arch_dict, lm
    from workloads.problem import gemm as gemm_

    arch = arch_from_dict(arch_dict(mac_fanout=(2, 1)))
    ert = EnergyTable({"DRAM": {"read": 0, "write": 0}, "Buffer": {"read": 0, "write": 0},
                       "Reg": {"read": 0, "write": 0}, "MAC": {"mac": 3.0}})
    result = evaluate(gemm_(2, 2, 2), arch, Mapping((lm(), lm(), lm({"N": 2, "K": 2}, "KN", sx={"M": 2}))), ert=ert).to_dict()
    assert (result["compute"]["used_instances"], result["levels"]["Reg"]["used_instances"]) == (2, 1)
    assert (result["energy_pJ"], result["energy_per_mac_pJ"]) == (24.0, 3.0)
    one = evaluate(gemm_(1, 1, 1), arch, Mapping((lm(), lm(), lm())), ert=ert).to_dict()
    assert (one["computes"], one["energy_pJ"], one["energy_per_mac_pJ"]) == (1, 3.0, 3.0)


def test_clusters_are_whole() -> None:
    """3 Regs in clusters of 2 (16-bit arrays of 8-bit words) make 3 // 2 = 1 whole cluster, the
    integer num_clusters of buffer.cpp ComputeScalarAccesses (Timeloop asserts the division is
    exact; bitloop accepts the arch): the 3 used Regs share it, each paying 1/3 of an access, so
    the level pays 53 accesses x 1 pJ (53 accesses per Reg: test_used_clusters_share_an_access)."""
    arch = arch_from_dict(_spec({"width": 8, "depth": 4096}, {"width": 16, "block_size": 1, "depth": 64}, pes=3))
    assert (arch.levels[2].cluster_size, arch.levels[2].instances) == (2, 3)
    result = evaluate(PROBLEM, arch, MAPPING, ert=_zero_ert(Reg={"read": 1.0, "write": 1.0})).to_dict()
    assert result["levels"]["Reg"]["energy_pJ"] == pytest.approx(53.0, rel=1e-12)


class _PerTensor:
    """4-bit weights, 8-bit inputs and outputs (per data space)."""

    def bits_per_element(self, dataspace: str) -> float:
        return {"Weights": 4.0}.get(dataspace, 8.0)


def test_formats_are_asked_per_data_space() -> None:
    """The Buffer stores the format: 15 weights x 4 bits + 10 inputs x 8 + 6 outputs x 8 = 188 bits
    do not fit its 16 x 8 = 128 bits; the error's default source is ``<mapping>``."""
    models = BitLevelModels(formats=_PerTensor(), format_levels=frozenset({"Buffer"}))
    with pytest.raises(InputError) as info:
        evaluate(PROBLEM, _arch({"width": 8, "depth": 16}), MAPPING, models=models)
    assert (info.value.source, info.value.key, info.value.expected) == ("<mapping>", "Buffer", (
        "tiles need 188 bits (Weights 15 x 4 bits, Inputs 10 x 8 bits, Outputs 6 x 8 bits) but Buffer holds 128 bits per instance"))


def test_address_generation_energy_per_data_space() -> None:
    """Buffer addr_gen_energy 0.5 pJ per address (buffer.cpp ComputeAddrGenEnergy): read-only
    data spaces generate one per read and fill, read-write ones one per update and fill
    (ComputeScalarAccesses). Weights 15 + 15 -> 15 pJ, Inputs 10 + 10 -> 10 pJ, Outputs 6
    updates + 0 fills -> 3 pJ (its 0 reads do not count); on top of the reads at 1 pJ
    (Weights 15, Inputs 10, Outputs 0)."""
    ert = _zero_ert(Buffer={"read": 1.0, "write": 0.0})
    result = evaluate(PROBLEM, _arch({"width": 8, "addr_gen_energy": 0.5}), MAPPING, ert=ert).to_dict()
    per_ds = {ds: v["energy_pJ"] for ds, v in result["levels"]["Buffer"]["dataspaces"].items()}
    assert per_ds == pytest.approx({"Weights": 30.0, "Inputs": 20.0, "Outputs": 3.0}, rel=1e-12)
    assert result["energy_pJ"] == pytest.approx(53.0, rel=1e-12)


def test_address_generation_is_paid_once_per_used_cluster() -> None:
    """Reg clusters of 2 (as in test_used_clusters_share_an_access): 3 used Regs in 2 clusters.
    Per Reg: Weights 10 reads + 5 fills, Inputs 10 + 10, Outputs 10 updates (+ 0 fills): the
    addresses of one instance, 0.5 pJ each, are paid by each of the 2 clusters
    (buffer.cpp ComputeAddrGenEnergy): Weights 15 x 0.5 x 2 = 15, Inputs 20, Outputs 10 pJ."""
    arch = arch_from_dict(_spec({"width": 8, "depth": 4096}, {"width": 16, "block_size": 1, "depth": 64,
                                                              "addr_gen_energy": 0.5}))
    result = evaluate(PROBLEM, arch, MAPPING, ert=_zero_ert()).to_dict()
    per_ds = {ds: v["energy_pJ"] for ds, v in result["levels"]["Reg"]["dataspaces"].items()}
    assert per_ds == pytest.approx({"Weights": 15.0, "Inputs": 20.0, "Outputs": 10.0}, rel=1e-12)


@pytest.mark.parametrize("bandwidth, cycles", [("write_bandwidth", 31), ("shared_bandwidth", 56), ("read_bandwidth", 25)])
def test_bandwidth_cycles_by_direction(bandwidth: str, cycles: int) -> None:
    """Buffer traffic (one instance): 25 words read, 15 + 10 filled + 6 updated = 31 written. At
    1 word per cycle the Buffer needs 31 cycles for writes, 25 + 31 = 56 for shared read/write
    ports, 25 for reads (compute: 10)."""
    result = evaluate(PROBLEM, _arch({"width": 8, bandwidth: 1}), MAPPING).to_dict()
    assert (result["levels"]["Buffer"]["bandwidth_cycles"], result["cycles"]) == (cycles, cycles)


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")   # 0 words / 0 bandwidth
@pytest.mark.parametrize("bandwidth", [0.0, 0.5])
def test_a_level_without_traffic_needs_no_bandwidth(bandwidth: float) -> None:
    """A Buffer that keeps nothing moves no words: 0 bandwidth cycles whatever its bandwidth
    (even 0), and the mapping stays valid at its 10 compute cycles."""
    bypass = Mapping((MAPPING.levels[0], dataclasses.replace(MAPPING.levels[1], keep=frozenset()), MAPPING.levels[2]))
    arch = _arch({"width": 8})
    buffer = dataclasses.replace(arch.levels[1], read_bandwidth=bandwidth, write_bandwidth=bandwidth)  # 0: API only
    arch = dataclasses.replace(arch, levels=(arch.levels[0], buffer, arch.levels[2]))
    result = evaluate(PROBLEM, arch, bypass).to_dict()
    assert (result["levels"]["Buffer"]["bandwidth_cycles"], result["cycles"], result["valid"]) == (0.0, 10, True)


def test_one_word_over_a_slow_port() -> None:
    """GEMM 1x1x2 all in the Reg: DRAM writes back the one output (1 word). At 0.25 words per
    cycle that takes 4 cycles (compute: 2)."""
    from test_nest_oracle import arch_dict, lm
    from workloads.problem import gemm as gemm_

    spec = arch_dict()
    spec["architecture"]["nodes"][1]["attributes"]["write_bandwidth"] = 0.25
    result = evaluate(gemm_(1, 1, 2), arch_from_dict(spec), Mapping((lm(), lm(), lm({"K": 2}, "K")))).to_dict()
    assert (result["levels"]["DRAM"]["bandwidth_cycles"], result["cycles"]) == (4.0, 4)


def test_energy_tables_are_looked_up_by_the_full_path() -> None:
    """Every component's own table (its full path) wins over another component of the same name
    listed first and priced 1000x: the energy is the one of a table keyed by names alone."""
    from test_nest_oracle import arch_dict, lm
    from workloads.problem import gemm as gemm_

    arch = arch_from_dict(arch_dict())
    own = {"read": 1.0, "write": 2.0, "leak": 0.5, "link_transfer": 0.0}
    by_name = {lvl.name: own for lvl in arch.levels} | {arch.compute.name: {"mac": 3.0}}
    decoys = {f"other.{name}": {"read": 1e3, "write": 1e3, "leak": 1e3, "mac": 1e3} for name in by_name}
    by_path = decoys | {lvl.path: own for lvl in arch.levels} | {arch.compute.path: {"mac": 3.0}}
    mapping = Mapping((lm(), lm(), lm({"K": 2}, "K")))
    want = evaluate(gemm_(1, 1, 2), arch, mapping, ert=EnergyTable(by_name)).to_dict()
    got = evaluate(gemm_(1, 1, 2), arch, mapping, ert=EnergyTable(by_path)).to_dict()
    assert got["energy_pJ"] == want["energy_pJ"] > 0
    assert [lvl["leak_energy_pJ"] for lvl in got["levels"].values()] == [0.5 * got["cycles"]] * 3
    assert got["compute"]["energy_pJ"] == 6.0
