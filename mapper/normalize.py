"""Iso-area / iso-power comparisons: scale a spec's compute array to a baseline's budget.

The *compute array* is every level replicated by the outermost spatial fanout (the PE
array): the arch levels with more than one instance plus the MAC lanes. Storage levels with
one instance (DRAM, global buffers) are shared and stay as specified. ``compare --normalize``
scales each spec's array so that its budget equals the baseline's (the first spec):

* ``area``: array area (um^2, the component library's ART), as BitMoD's "iso-compute area"
  constraint (bitmod.txt Sec. V-A).
* ``power``: array peak power (mW): every lane busy every cycle (its ``compute`` action, or
  ``mac`` for one-cycle MAC lanes) plus the leakage of every array level, at the spec's
  clock (a design-time figure, not the workload's average power).

Scaling multiplies the Y extent of the array container (X when the array has no Y extent),
rounded to whole rows; the spatial constraints on the level above the array that bounded a
dimension by the old extent are raised to the new one. The mapper then maps the scaled spec
from scratch, so memory-bound layers do not speed up with more lanes.
"""

from __future__ import annotations

import copy
from typing import Any

from mapper.spec import Spec, spec_from_dict
from workloads.yamlio import InputError

NORMALIZE = ("none", "area", "power")


def _array_levels(spec: Spec) -> list[Any]:
    return [l for l in [*spec.arch.levels, spec.arch.compute] if l.instances > 1]


def array_area_um2(spec: Spec) -> float:
    """Area of the compute array (um^2): replicated levels and lanes, all instances."""
    return sum(spec.ert.area(l.path, l.name) * l.instances for l in _array_levels(spec))


def array_peak_power_mW(spec: Spec) -> float:
    """Peak power of the compute array (mW): each lane's costliest action and every array level's
    leakage, every cycle, at ``spec.clock_MHz``."""
    ert, compute = spec.ert, spec.arch.compute
    actions = ert.energy_pJ.get(compute.path) or ert.energy_pJ.get(compute.name) or {}
    busy = actions.get("compute", actions.get("mac", 0.0))     # one busy lane-cycle ('mac': a 1-cycle MAC)
    pj_per_cycle = busy * compute.instances
    pj_per_cycle += sum(ert.energy(l.path, l.name, "leak") * l.instances for l in _array_levels(spec))
    return pj_per_cycle * spec.clock_MHz * 1e-3


BUDGETS = {"area": array_area_um2, "power": array_peak_power_mW}


def _array_node(nodes: list[Any], source: Any) -> int:
    """Index of the outermost node with a spatial fanout (the array container)."""
    for i, node in enumerate(nodes):
        mesh = (node.get("spatial") or {}) if isinstance(node, dict) else {}
        if int(mesh.get("meshX", 1)) * int(mesh.get("meshY", 1)) > 1:
            return i
    raise InputError(source, "architecture.nodes", "expected a spatial array (a node with meshX/meshY > 1)")


def _raise_spatial_bounds(constraint: dict[str, Any], axis: str, old: int, new: int) -> None:
    """Bounds ``D<=old`` of the dims the constraint puts on ``axis`` (meshX/meshY) become ``D<=new``."""
    perm, split = str(constraint.get("permutation", "")), constraint.get("split")
    if split is None:
        on_axis = set(perm) or None
    else:
        on_axis = set(perm[:int(split)] if axis == "meshX" else perm[int(split):])
    tokens = []
    for tok in str(constraint.get("factors", "")).split():
        dim, _, value = tok.partition("<=")
        if value and int(value) == old and (on_axis is None or dim in on_axis):
            tok = f"{dim}<={new}"
        tokens.append(tok)
    constraint["factors"] = " ".join(tokens)


def resize_array(spec: Spec, mesh_x: int, mesh_y: int, name: str | None = None) -> Spec:
    """``spec`` with its array container (the outermost spatial fanout) resized to ``mesh_x`` x
    ``mesh_y``; spatial constraints on the storage level above it that bounded a dimension by
    the old extent of an axis are raised (or lowered) to the new one."""
    raw = copy.deepcopy(spec.raw)
    if name:
        raw["name"] = name
    arch = raw.get("architecture") or {}
    nodes = arch.get("nodes") if isinstance(arch, dict) else None
    if not isinstance(nodes, list):
        raise InputError(spec.source, "spec.architecture", "expected an inline v0.4 architecture (nodes) to resize")
    i = _array_node(nodes, spec.source)
    mesh = nodes[i]["spatial"]
    old = {"meshX": int(mesh.get("meshX", 1)), "meshY": int(mesh.get("meshY", 1))}
    new = {"meshX": int(mesh_x), "meshY": int(mesh_y)}
    mesh.update({k: v for k, v in new.items() if v != 1 or k in mesh})
    above = next((n["name"] for n in reversed(nodes[:i]) if isinstance(n, dict) and "class" in n), None)
    for c in raw.get("constraints") or []:
        if isinstance(c, dict) and c.get("type") == "spatial" and c.get("target") == above:
            for axis in ("meshX", "meshY"):
                if new[axis] != old[axis]:
                    _raise_spatial_bounds(c, axis, old[axis], new[axis])
    return spec_from_dict({"spec": raw}, spec.source)


def scale_array(spec: Spec, scale: float) -> tuple[Spec, float]:
    """A copy of ``spec`` whose compute array is ``scale`` times larger, by its Y extent (X when it
    has none), rounded to whole rows; returns it and the realized scale."""
    nodes = (spec.raw.get("architecture") or {}).get("nodes")
    if not isinstance(nodes, list):
        raise InputError(spec.source, "spec.architecture", "--normalize needs an inline v0.4 architecture (nodes)")
    mesh = nodes[_array_node(nodes, spec.source)]["spatial"]
    x, y = int(mesh.get("meshX", 1)), int(mesh.get("meshY", 1))
    if y > 1:
        new_y = max(1, round(y * scale))
        return resize_array(spec, x, new_y), new_y / y
    new_x = max(1, round(x * scale))
    return resize_array(spec, new_x, y), new_x / x


def normalize_specs(specs: list[Spec], how: str) -> tuple[list[Spec], list[float]]:
    """Specs scaled to the first one's array ``area`` or ``power`` budget (``none``: unchanged),
    and the realized scale of each array."""
    if how not in NORMALIZE:
        raise InputError("<compare>", "--normalize", f"expected one of {', '.join(NORMALIZE)}, got {how!r}")
    if how == "none" or len(specs) < 2:
        return list(specs), [1.0] * len(specs)
    budget = BUDGETS[how]
    target = budget(specs[0])
    out, scales = [specs[0]], [1.0]
    for s in specs[1:]:
        own = budget(s)
        if own <= 0:
            raise InputError(s.source, "--normalize", f"the compute array of {s.name} has no {how} to scale by")
        scaled, realized = scale_array(s, target / own)
        out.append(scaled)
        scales.append(realized)
    return out, scales


__all__ = ["BUDGETS", "NORMALIZE", "array_area_um2", "array_peak_power_mW", "normalize_specs", "resize_array",
           "scale_array"]
