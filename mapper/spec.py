"""Accelerator specs (``specs/*.yaml``): architecture, component libraries, work/format models,
clock and dataflow constraints in one file (format: docs/architecture.md).

A :class:`Spec` keeps its raw data so that sensitivity studies can change any attribute by
path (``Spec.with_overrides``) and re-derive energies, areas and mappings.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from mapper.arch import NEST_ANALYSES, Arch, arch_from_dict
from mapper.constraints import Constraints, constraints_from_list
from mapper.ert import EnergyTable
from workloads.problem import Problem
from workloads.yamlio import InputError, as_float, load_yaml, normalize_keys

SPECS_DIR = Path(__file__).resolve().parents[1] / "specs"
# Dimension names of the built-in problem shapes: spec constraints may name any of them and
# apply to the layers that have them.
KNOWN_DIMS = frozenset({"M", "N", "K", "B", "C", "R", "S", "P", "Q"})


def resolve_spec_path(name: str | os.PathLike) -> Path:
    """A spec file path, or a bundled spec name (``panacea``, ``baselines/sa_ws``)."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    for candidate in (SPECS_DIR / f"{name}.yaml", SPECS_DIR / "baselines" / f"{name}.yaml"):
        if candidate.exists():
            return candidate
    return p


@dataclass
class Spec:
    """One accelerator description, resolved from a spec file."""

    name: str
    source: Path
    raw: dict[str, Any]
    arch: Arch
    clock_MHz: float
    technology: str
    libraries: list[str]
    estimators: list[Path]
    work_model: dict[str, Any]
    format_model: dict[str, Any] | None
    lockstep_level: str | None
    constraints_raw: list[Any] = field(default_factory=list)

    # ---- derived ------------------------------------------------------------------------
    @cached_property
    def tables(self) -> Any:
        """Component energies/areas (components.ComponentTables) for every arch level."""
        import components

        return components.resolve(components.instances_from_arch(self.arch), libraries=self.libraries,
                                  estimators=self.estimators, technology=self.technology, clock_MHz=self.clock_MHz,
                                  base_dir=self.source.parent)

    @cached_property
    def ert(self) -> EnergyTable:
        """pJ per action and um^2 per instance for every arch level."""
        t = self.tables
        return EnergyTable({k: dict(v) for k, v in t.ert.items()}, dict(t.art), str(self.source))

    @property
    def area_um2(self) -> float:
        """Total area of the arch levels' instances (um^2)."""
        ert = self.ert
        return sum(ert.area(l.path, l.name) * l.instances for l in [*self.arch.levels, self.arch.compute])

    def constraints_for(self, problem: Problem) -> Constraints:
        """The spec's constraints restricted to the dimensions this problem has."""
        entries = []
        for i, entry in enumerate(self.constraints_raw):
            e = dict(entry)
            if isinstance(e.get("factors"), str):
                kept = []
                for tok in e["factors"].split():
                    dim = tok.split("=")[0].split("<")[0].split(">")[0]
                    if dim not in KNOWN_DIMS:
                        raise InputError(self.source, f"spec.constraints[{i}].factors", f"unknown dimension {dim!r} (known: {', '.join(sorted(KNOWN_DIMS))})")
                    if dim in problem.dims:
                        kept.append(tok)
                e["factors"] = " ".join(kept)
            if isinstance(e.get("permutation"), str):
                e["permutation"] = "".join(d for d in e["permutation"] if d in problem.dims)
            if "split" in e and isinstance(entry.get("permutation"), str):
                # Keep the X/Y split aligned with the dims that remain.
                before = entry["permutation"][: int(e["split"])]
                e["split"] = sum(1 for d in before if d in problem.dims)
            entries.append(e)
        return constraints_from_list(entries, self.arch, problem, self.source)

    def key(self) -> str:
        """Content hash of everything that changes results (raw spec + plug-in files)."""
        h = hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode())
        for est in self.estimators:
            h.update(Path(est).read_bytes() if Path(est).exists() else str(est).encode())
        return h.hexdigest()[:16]

    def with_overrides(self, overrides: dict[str, Any]) -> "Spec":
        """A new spec with raw values replaced by dotted path (``arch.GLB.depth``, ``work_model.sub_group``)."""
        raw = copy.deepcopy(self.raw)
        for path, value in overrides.items():
            set_path(raw, path, value, self.source)
        return spec_from_dict({"spec": raw}, self.source)


def _find_node(arch_raw: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The v0.4 node or v0.3 component called ``name`` inside an inline architecture."""
    stack: list[Any] = [arch_raw]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("name") == name or str(node.get("name", "")).split("[")[0] == name:
                return node
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(node)
    return None


def set_path(raw: dict[str, Any], path: str, value: Any, source: Any = "<spec>") -> None:
    """Set one value by dotted path. ``arch.LEVEL.attr`` addresses an arch node's attribute;
    ``pe.attr`` the compute level's; other paths walk the spec's keys."""
    parts = path.split(".")
    if parts[0] in ("arch", "architecture") and len(parts) == 3:
        node = _find_node(raw.get("architecture", {}), parts[1])
        if node is None:
            raise InputError(source, path, f"no architecture node named {parts[1]!r}")
        if parts[2] in ("meshX", "meshY"):
            node.setdefault("spatial", {})[parts[2]] = value
        else:
            node.setdefault("attributes", {})[parts[2]] = value
        return
    if parts[0] == "pe" and len(parts) == 2:
        compute = arch_from_dict({"architecture": raw.get("architecture")}, source).compute
        node = _find_node(raw.get("architecture", {}), compute.name)
        assert node is not None
        node.setdefault("attributes", {})[parts[1]] = value
        # Work models read the same attribute name when they have it.
        if isinstance(raw.get("work_model"), dict) and parts[1] in raw["work_model"]:
            raw["work_model"][parts[1]] = value
        return
    target: Any = raw
    for i, part in enumerate(parts[:-1]):
        if not isinstance(target, dict) or part not in target:
            raise InputError(source, ".".join(parts[: i + 1]), "no such key in the spec")
        target = target[part]
    if not isinstance(target, dict) or parts[-1] not in target:
        raise InputError(source, path, "no such key in the spec")
    target[parts[-1]] = value


def spec_from_dict(data: Any, source: str | os.PathLike = "<spec>") -> Spec:
    """Build a :class:`Spec` from spec YAML data (``spec:`` mapping)."""
    source_path = Path(source)
    data = normalize_keys(data)
    if not isinstance(data, dict) or not isinstance(data.get("spec"), dict):
        raise InputError(source, "spec", "missing required key (expected a 'spec:' mapping)")
    raw = data["spec"]
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise InputError(source, "spec.name", f"expected a spec name, got {name!r}")
    base = source_path.parent
    if "architecture" in raw:
        arch_raw = raw["architecture"]
    elif "architecture_file" in raw:
        arch_file = base / str(raw["architecture_file"])
        arch_raw = load_yaml(arch_file).get("architecture") if isinstance(load_yaml(arch_file), dict) else None
        raw = {**raw, "architecture": arch_raw}
    else:
        raise InputError(source, "spec.architecture", "missing required key (or architecture_file)")
    arch = arch_from_dict({"architecture": arch_raw}, source)
    analysis = raw.get("nest_analysis", arch.nest_analysis)
    if analysis not in NEST_ANALYSES:
        raise InputError(source, "spec.nest_analysis", f"expected one of {', '.join(NEST_ANALYSES)}, got {analysis!r}")
    arch = dataclasses.replace(arch, nest_analysis=analysis)
    clock = as_float(raw.get("clock_MHz", 1000.0), source, "spec.clock_MHz", minimum=1e-6)
    comps = raw.get("components") or {}
    if not isinstance(comps, dict):
        raise InputError(source, "spec.components", "expected a mapping with libraries and estimators")
    libraries = [str(base / l) if str(l).endswith((".yaml", ".yml")) else str(l) for l in comps.get("libraries") or []]
    estimators = [base / str(e) for e in comps.get("estimators") or []]
    for i, est in enumerate(estimators):
        if not est.exists():
            raise InputError(source, f"spec.components.estimators[{i}]", f"plug-in file not found: {est}")
    work = raw.get("work_model") or {"family": "dense"}
    if not isinstance(work, dict) or not isinstance(work.get("family"), str):
        raise InputError(source, "spec.work_model.family", "expected a work-model family name")
    fmt = raw.get("format_model")
    if fmt is not None and (not isinstance(fmt, dict) or not isinstance(fmt.get("family"), str)):
        raise InputError(source, "spec.format_model.family", "expected a format-model family name")
    lockstep = raw.get("lockstep_level")
    if lockstep is not None:
        arch.level_index(str(lockstep), str(source), "spec.lockstep_level")
    constraints = raw.get("constraints") or []
    if not isinstance(constraints, list):
        raise InputError(source, "spec.constraints", "expected a list of Timeloop constraint entries")
    return Spec(name, source_path, raw, arch, clock, str(raw.get("technology", "28nm")), libraries, estimators,
                dict(work), dict(fmt) if fmt else None, lockstep, constraints)


def load_spec(path: str | os.PathLike, nest_analysis: str | None = None) -> Spec:
    """Read a spec file (or a bundled spec by name); ``nest_analysis`` overrides the spec's
    (``timeloop`` or ``exact``, docs/nest_analysis.md)."""
    p = resolve_spec_path(path)
    data = load_yaml(p)
    if nest_analysis is not None and isinstance(data, dict) and isinstance(data.get("spec"), dict):
        data = {**data, "spec": {**data["spec"], "nest_analysis": nest_analysis}}
    return spec_from_dict(data, p)
