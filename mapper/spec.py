"""Accelerator specs (``specs/*.yaml``): architecture, component libraries, work/format models,
clock and dataflow constraints in one file (format: docs/architecture.md).

A :class:`Spec` keeps its raw data so that sensitivity studies can change any attribute by
path (``Spec.with_overrides``) and re-derive energies, areas and mappings.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from mapper.arch import NEST_ANALYSES, Arch, arch_from_dict
from mapper.constraints import Constraints, constraints_from_list
from mapper.ert import EnergyTable
from mapper.limits import check_arch
from workloads.problem import Problem
from workloads.provenance import build_id, canonical, digest
from workloads.yamlio import InputError, as_float, as_list, load_yaml, normalize_keys

import specs as _bundled

# The bundled specs: the top-level ``specs`` package (installed as package data with bitloop).
SPECS_DIR = Path(_bundled.__file__).resolve().parent
# Spec-named Python estimator plug-ins run only when this is set (or with ``--allow-plugins``).
PLUGINS_ENV = "BITLOOP_ALLOW_PLUGINS"
# Bump when what Spec.key() digests changes meaning.
SPEC_KEY_SCHEMA = 2
# Dimension names of the built-in problem shapes: spec constraints may name any of them and
# apply to the layers that have them.
KNOWN_DIMS = frozenset({"M", "N", "K", "B", "C", "R", "S", "P", "Q"})


def resolve_spec_path(name: str | os.PathLike) -> Path:
    """A spec file path, or a bundled spec name (``panacea``, ``sa_ws``, ``baselines/sa_ws``).

    A name that is not an existing file and has no ``.yaml`` suffix is looked up among the
    bundled specs (the ``specs`` package), so ``--spec panacea`` works from any folder.
    """
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        return p
    for candidate in (SPECS_DIR / f"{name}.yaml", SPECS_DIR / "baselines" / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    return p


def bundled_spec_names() -> list[str]:
    """Names ``--spec`` accepts without a path (``panacea``, ``sa_ws``, ...)."""
    return sorted(p.stem for d in (SPECS_DIR, SPECS_DIR / "baselines") for p in d.glob("*.yaml"))


def plugins_allowed() -> bool:
    """True when ``$BITLOOP_ALLOW_PLUGINS`` opts in to running spec-named Python plug-ins."""
    return os.environ.get(PLUGINS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


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
    plugins_allowed: bool = False     # the spec may name Python estimator plug-ins (explicit opt-in)

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

    def resolved(self) -> dict[str, Any]:
        """Everything a result on this spec depends on, as resolved (not as written): the arch
        levels, the ERT/ART values actually used (so an edited component library, estimator
        CSV/.py or data CSV shows up), clock, work/format-model parameters, lock-step level
        and constraints."""
        ert = self.ert
        arch = canonical(self.arch)
        arch.pop("source", None)    # where the arch was read from changes no result
        return {"arch": arch, "ert_pJ": ert.energy_pJ, "art_um2": ert.area_um2, "clock_MHz": self.clock_MHz,
                "technology": self.technology, "work_model": self.work_model, "format_model": self.format_model,
                "lockstep_level": self.lockstep_level, "constraints": self.constraints_raw}

    def key(self) -> str:
        """Digest (16 hex digits) of :meth:`resolved`, the key schema and the bitloop build."""
        return digest("spec", SPEC_KEY_SCHEMA, build_id(), self.resolved())[:16]

    def with_overrides(self, overrides: dict[str, Any]) -> "Spec":
        """A new spec with raw values replaced by dotted path (``arch.GLB.depth``, ``work_model.sub_group``)."""
        raw = copy.deepcopy(self.raw)
        for path, value in overrides.items():
            set_path(raw, path, value, self.source)
        return spec_from_dict({"spec": raw}, self.source, allow_plugins=self.plugins_allowed)


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


def spec_from_dict(data: Any, source: str | os.PathLike = "<spec>", allow_plugins: bool | None = None) -> Spec:
    """Build a :class:`Spec` from spec YAML data (``spec:`` mapping).

    A spec naming a Python estimator plug-in (``components.estimators: [x.py]``) is refused
    unless ``allow_plugins`` is True (default: ``$BITLOOP_ALLOW_PLUGINS``), since running a
    spec someone sent must not run their code unasked. CSV plug-ins are data and always allowed.
    """
    allow = plugins_allowed() if allow_plugins is None else bool(allow_plugins)
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
    check_arch(arch, str(source))
    clock = as_float(raw.get("clock_MHz", 1000.0), source, "spec.clock_MHz", minimum=1e-6)
    comps = raw.get("components") or {}
    if not isinstance(comps, dict):
        raise InputError(source, "spec.components", "expected a mapping with libraries and estimators")
    libraries = []
    for i, entry in enumerate(as_list(comps.get("libraries"), source, "spec.components.libraries")):
        if not isinstance(entry, str):
            raise InputError(source, f"spec.components.libraries[{i}]",
                             f"expected a library name or a YAML path (string), got {type(entry).__name__}")
        libraries.append(str(base / entry) if entry.endswith((".yaml", ".yml")) else entry)
    entries = as_list(comps.get("estimators"), source, "spec.components.estimators")
    estimators = [base / str(e) for e in entries]
    for i, est in enumerate(estimators):
        if not est.is_file():
            raise InputError(source, f"spec.components.estimators[{i}]", f"plug-in file not found: {est}")
        if est.suffix.lower() == ".py" and not allow:
            raise InputError(source, f"spec.components.estimators[{i}]",
                             f"{est.name} is Python code; run it only if you trust it: pass --allow-plugins "
                             f"or set {PLUGINS_ENV}=1")
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
                dict(work), dict(fmt) if fmt else None, lockstep, constraints, allow)


def load_spec(path: str | os.PathLike, allow_plugins: bool | None = None, nest_analysis: str | None = None) -> Spec:
    """Read a spec file (or a bundled spec by name); ``allow_plugins`` as in :func:`spec_from_dict`;
    ``nest_analysis`` overrides the spec's (``timeloop`` or ``exact``, docs/nest_analysis.md)."""
    p = resolve_spec_path(path)
    if not p.is_file() and p.suffix not in (".yaml", ".yml"):
        raise InputError(p, None, f"spec not found: expected a spec file or a bundled name ({', '.join(bundled_spec_names())})")
    data = load_yaml(p)
    if nest_analysis is not None and isinstance(data, dict) and isinstance(data.get("spec"), dict):
        data = {**data, "spec": {**data["spec"], "nest_analysis": nest_analysis}}
    return spec_from_dict(data, p, allow_plugins)
