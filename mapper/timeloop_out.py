"""What timeloop-mapper writes, from one evaluated mapping: ``<prefix>.map.yaml`` (a Timeloop
mapping), ``<prefix>.map.txt`` (the loop nest) and ``<prefix>.stats.txt`` (per-level stats).

The text layouts follow Timeloop's (``src/model/topology.cpp`` ``operator<<``,
``src/model/buffer.cpp`` stats printing, ``src/mapping/mapping.cpp`` ``PrettyPrint``) so a
Timeloop user can diff them: storage levels are numbered from the compute level (Level 0)
outward, and levels that keep nothing and cost nothing (timeloopfe's dummies) are not shown
in the stats. Numbers come from ``Evaluation.to_dict()`` (the ``model.json`` contract).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mapper.arch import Arch, StorageLevel
from mapper.ert import EnergyTable
from mapper.mapping import LevelMapping, Mapping
from workloads.problem import Problem
from workloads.yamlio import write_atomic

_IND = "    "


def _loops(lm: LevelMapping, dims: tuple[str, ...]) -> list[tuple[str, int, str]]:
    """(dim, bound, kind) of one level's loops, outer to inner: temporal, then spatial X, then Y."""
    loops = [(d, f, "") for d, f in lm.temporal_loops(dims)]
    spatial_order = [d for d in reversed(lm.spatial_permutation)] or list(dims)
    spatial_order += [d for d in dims if d not in spatial_order]
    for axis, factors in (("X", lm.spatial_x), ("Y", lm.spatial_y)):
        loops += [(d, factors[d], f" (Spatial-{axis})") for d in spatial_order if factors.get(d, 1) > 1]
    return loops


def loop_nest_text(result: dict[str, Any], arch: Arch, problem: Problem, mapping: Mapping) -> str:
    """Timeloop's ``.map.txt``: each level's kept tiles, then its loops (``| for X in [0:N)``)."""
    lines: list[str] = []
    headers: list[str] = []
    depth = 0
    for lvl, lm in zip(arch.levels, mapping.levels):
        tiles = " ".join(f"{ds}:{s['tile_size']} ({s['tile_size']})" for ds, s in result["levels"][lvl.name]["dataspaces"].items())
        headers.append(f"{lvl.name} [ {tiles + ' ' if tiles else ''}] ")
        loops = _loops(lm, problem.dims)
        if not loops:
            continue
        lines += headers + ["-" * len(headers[-1].rstrip())]
        headers = []
        for d, f, kind in loops:
            lines.append(f"| {'  ' * depth}for {d} in [0:{f}){kind}")
            depth += 1
        lines.append("")
    if headers:
        lines += headers + ["-" * len(headers[-1].rstrip())]
    elif lines:
        lines.pop()
    lines.append(f"| {'  ' * depth}<< Compute >>")
    return "\n".join(lines) + "\n"


def _bw(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _storage_section(level_id: int, lvl: StorageLevel, lm: LevelMapping, stats: dict[str, Any], result: dict[str, Any],
                     problem: Problem, ert: EnergyTable, source: str) -> list[str]:
    cycles = result["cycles"]
    read_e = ert.energy(lvl.path, lvl.name, "read")
    leak = ert.energy(lvl.path, lvl.name, "leak")
    size = "-" if lvl.capacity_words is None else str(lvl.capacity_words)
    out = [f"Level {level_id}", "-------", f"=== {lvl.name} ===", "", f"{_IND}SPECS", f"{_IND}-----"]
    specs = [
        ("Technology", lvl.component_class), ("Size", size), ("Word bits", lvl.word_bits),
        ("Block size", lvl.block_size), ("Cluster size", lvl.cluster_size),
        ("Instances", f"{lvl.instances} ({lvl.mesh_x}*{lvl.mesh_y})"),
        ("Shared bandwidth", _bw(lvl.shared_bandwidth)), ("Read bandwidth", _bw(lvl.read_bandwidth)),
        ("Write bandwidth", _bw(lvl.write_bandwidth)),
        ("Vector access energy", f"{read_e:.2f} pJ"), ("Vector access energy source", source),
        ("Per-instance-cycle leakage", f"{leak:.2f} pJ"),
        ("Leakage energy (total)", f"{stats['leak_energy_pJ']:.2f} pJ"),
        ("Area", f"{ert.area(lvl.path, lvl.name):.2f} um^2"),
    ]
    out += [f"{_IND * 2}{k:<31} : {v}" for k, v in specs]
    out += ["", f"{_IND}MAPPING", f"{_IND}-------", f"{_IND}Loop nest:"]
    out += [f"{_IND}  {'  ' * i}for {d} in [0:{f}){kind}" for i, (d, f, kind) in enumerate(_loops(lm, problem.dims))]
    throttle = min(1.0, result["compute_cycles"] / stats["bandwidth_cycles"]) if stats["bandwidth_cycles"] else 1.0
    out += ["", f"{_IND}STATS", f"{_IND}-----", f"{_IND}Cycles               : {cycles}",
            f"{_IND}Bandwidth throttling : {throttle:.2f}",
            f"{_IND}Capacity utilization : {100 * stats['capacity_utilization']:.2f}%"]
    for ds, s in stats["dataspaces"].items():
        used = max(1, stats["used_instances"])
        r, f, u = s["reads_per_instance"], s["fills_per_instance"], s["updates_per_instance"]
        scalar = r + f + u
        links = int(s.get("link_transfers", 0))
        rows = [
            ("Utilized capacity", s["tile_size"]), ("Utilized instances (max)", stats["used_instances"]),
            ("Scalar reads (per-instance)", r), ("Scalar fills (per-instance)", f), ("Scalar updates (per-instance)", u),
            ("Scalar reads (total)", s["reads"]), ("Scalar fills (total)", s["fills"]), ("Scalar updates (total)", s["updates"]),
            ("Vector reads (per-instance)", s["vector_reads_per_instance"]),
            ("Vector fills (per-instance)", s["vector_fills_per_instance"]),
            ("Vector updates (per-instance)", s["vector_updates_per_instance"]),
            ("Link transfers (per-instance)", links // used), ("Link transfers (total)", links),
            ("Multicast factor", f"{s['multicast']:.2f}"), ("Spatial reduction factor", f"{s['spatial_reduction']:.2f}"),
            ("Energy (per-scalar-access)", f"{s['energy_pJ'] / used / scalar if scalar else 0.0:.2f} pJ"),
            ("Energy (per-instance)", f"{s['energy_pJ'] / used:.2f} pJ"), ("Energy (total)", f"{s['energy_pJ']:.2f} pJ"),
            ("Shared Bandwidth (per-instance)", f"{scalar / cycles:.2f} words/cycle"),
            ("Shared Bandwidth (total)", f"{scalar * used / cycles:.2f} words/cycle"),
            ("Read Bandwidth (per-instance)", f"{r / cycles:.2f} words/cycle"),
            ("Read Bandwidth (total)", f"{r * used / cycles:.2f} words/cycle"),
            ("Write Bandwidth (per-instance)", f"{(f + u) / cycles:.2f} words/cycle"),
            ("Write Bandwidth (total)", f"{(f + u) * used / cycles:.2f} words/cycle"),
        ]
        out.append(f"{_IND}{ds}:")
        out += [f"{_IND * 2}{k:<40} : {v}" for k, v in rows]
    return out + [""]


def stats_text(result: dict[str, Any], arch: Arch, problem: Problem, mapping: Mapping, ert: EnergyTable,
               sources: dict[str, dict[str, Any]] | None = None) -> str:
    """Timeloop-style ``.stats.txt`` of one evaluated mapping (``result`` = ``Evaluation.to_dict()``)."""
    sources = sources or {}

    def source_of(name: str) -> str:
        s = sources.get(name, {})
        if s.get("source") == "ERT":
            return f"ERT ({s['table']})"
        if s.get("source") == "estimator":
            return f"bitloop estimator ({s['class']} at {s['technology']}: {', '.join(s['estimators'])})"
        return s.get("source", "-")

    comp, cyc = result["compute"], result["cycles"]
    c = arch.compute
    mac_e = ert.energy(c.path, c.name, "mac") if ert.has_table(c.path, c.name) else 0.0
    lines = ["Buffer and Arithmetic Levels", "----------------------------", "Level 0", "-------", f"=== {c.name} ===", "",
             f"{_IND}SPECS", f"{_IND}-----",
             f"{_IND}Instances             : {c.instances} ({c.mesh_x}*{c.mesh_y})",
             f"{_IND}Compute energy        : {mac_e:.2f} pJ",
             f"{_IND}Compute energy source : {source_of(c.name)}", "",
             f"{_IND}STATS", f"{_IND}-----",
             f"{_IND}Utilized instances      : {comp['used_instances']}",
             f"{_IND}Computes (total)        : {result['computes']}",
             f"{_IND}Cycles                  : {cyc}",
             f"{_IND}Energy (total)          : {comp['energy_pJ']:.2f} pJ",
             f"{_IND}Area (total)            : {ert.area(c.path, c.name) * c.instances:.2f} um^2", ""]
    shown = []
    for i in reversed(range(len(arch.levels))):
        lvl, stats = arch.levels[i], result["levels"][arch.levels[i].name]
        level_id = len(arch.levels) - i
        if not stats["dataspaces"] and stats["energy_pJ"] == 0:
            continue   # Timeloop hides levels without accesses or energy
        shown.append(lvl.name)
        lines += _storage_section(level_id, lvl, mapping.levels[i], stats, result, problem, ert, source_of(lvl.name))
    area = sum(ert.area(l.path, l.name) * l.instances for l in [*arch.levels, c])
    computes = max(1, result["computes"])
    per_compute = [(c.name, comp["energy_pJ"])] + [(n, result["levels"][n]["energy_pJ"]) for n in shown]
    width = max(len(n) for n, _ in per_compute) + 1
    lines += ["Summary Stats", "-------------",
              f"Utilization: {100 * result['utilization']:.2f}%", f"Cycles: {cyc}",
              f"Energy: {result['energy_pJ'] / 1e6:.2f} uJ",
              f"EDP(J*cycle): {result['energy_pJ'] * 1e-12 * cyc:.2e}", f"Area: {area / 1e6:.2f} mm^2", "",
              f"Computes = {result['computes']}", "fJ/Compute"]
    lines += [f"{_IND}{n:<{width}}= {e * 1000 / computes:.2f}" for n, e in per_compute if e != 0]
    lines.append(f"{_IND}{'Total':<{width}}= {result['energy_pJ'] * 1000 / computes:.2f}")
    return "\n".join(lines) + "\n"


def write_mapper_outputs(out_dir: str | Path, prefix: str, result: dict[str, Any], arch: Arch, problem: Problem,
                         mapping: Mapping, ert: EnergyTable, sources: dict[str, dict[str, Any]] | None = None) -> dict[str, Path]:
    """Write ``<prefix>.map.yaml``, ``.map.txt`` and ``.stats.txt`` atomically; returns their paths."""
    out = Path(out_dir)
    paths = {"map_yaml": out / f"{prefix}.map.yaml", "map_txt": out / f"{prefix}.map.txt",
             "stats": out / f"{prefix}.stats.txt"}
    write_atomic(paths["map_yaml"], mapping.to_yaml(arch, problem))
    write_atomic(paths["map_txt"], loop_nest_text(result, arch, problem, mapping))
    write_atomic(paths["stats"], stats_text(result, arch, problem, mapping, ert, sources))
    return paths
