"""Timeloop-style text summary of one evaluated mapping (from the ``model.json`` dict)."""

from __future__ import annotations

from typing import Any


def format_summary(result: dict[str, Any], title: str = "") -> str:
    """Per-level accesses and energy, then totals (cycles, utilization, energy, pJ/MAC, EDP)."""
    lines = []
    if title:
        lines += [title, "=" * len(title)]
    for name, level in result["levels"].items():
        lines.append(f"Level {name}  (instances {level['instances']}, used {level['used_instances']}, "
                     f"capacity use {100 * level['capacity_utilization']:.1f}%)")
        lines.append(f"  {'data space':<10} {'tile':>10} {'reads':>14} {'fills':>14} {'updates':>14} {'multicast':>9} "
                     f"{'link xfers':>12} {'energy pJ':>14}")
        for ds, s in level["dataspaces"].items():
            lines.append(f"  {ds:<10} {s['tile_size']:>10} {s['reads']:>14} {s['fills']:>14} {s['updates']:>14} "
                         f"{s['multicast']:>9.2f} {s['link_transfers']:>12g} {s['energy_pJ']:>14.2f}")
        network = f", network {level['network_energy_pJ']:.2f} pJ" if level["network_energy_pJ"] else ""
        lines.append(f"  energy (incl. leak) {level['energy_pJ']:.2f} pJ{network}, "
                     f"bandwidth-bound cycles {level['bandwidth_cycles']:.0f}")
    comp = result["compute"]
    actions = ", ".join(f"{k}={v:g}" for k, v in comp["actions"].items())
    lines.append(f"Compute {comp['name']}  (instances {comp['instances']}, used {comp['used_instances']}): "
                 f"{actions}; energy {comp['energy_pJ']:.2f} pJ")
    lines.append("")
    lines.append(f"Nest analysis       {result['nest_analysis']}")
    lines.append(f"Computes (MACs)     {result['computes']}")
    lines.append(f"Cycles              {result['cycles']}  (compute-bound {result['compute_cycles']:.0f})")
    if "seconds" in result:
        lines.append(f"Seconds             {result['seconds']:.6g}")
    lines.append(f"Utilization         {100 * result['utilization']:.2f}%")
    lines.append(f"Energy              {result['energy_pJ']:.4g} pJ")
    lines.append(f"Energy per MAC      {result['energy_per_mac_pJ']:.4g} pJ/MAC")
    lines.append(f"EDP                 {result['edp_pJ_cycles']:.4g} pJ*cycles")
    return "\n".join(lines)
