"""Energy per action for a plain Timeloop architecture, and where each number came from.

Two sources, as Timeloop has them: an Accelergy ERT (``--ert``; it takes precedence), or, when
none is given, bitloop's component library and estimators priced on the arch's own classes and
attributes (``components.resolve``; the classes are listed in docs/timeloop_compat.md). An
unknown class is an :class:`InputError`, never a silent 0 pJ. ``dummy_storage`` levels need no
ERT table (they keep nothing and cost nothing, as in Timeloop).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mapper.arch import Arch, Level
from mapper.ert import EnergyTable
from workloads.yamlio import InputError

DEFAULT_TECHNOLOGY = "28nm"   # the node bitloop's estimators are characterized at


@dataclass
class PricedArch:
    """The energy table the model uses, with one provenance record per level and the compute.

    ``sources``: component name -> ``{"source": "ERT", "file", "table"}`` or
    ``{"source": "estimator", "class", "technology", "estimators", ...}`` or ``{"source": "dummy_storage"}``.
    """

    ert: EnergyTable
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def summary_lines(self) -> list[str]:
        """One line per component saying where its energies come from."""
        lines = ["Energy sources:"]
        for name, s in self.sources.items():
            if s["source"] == "ERT":
                lines.append(f"  {name:<24} ERT {s['file']} table {s['table']}")
            elif s["source"] == "estimator":
                tech = s["technology"] + ("" if s["technology_given"] else " (default; the arch sets none)")
                lines.append(f"  {name:<24} estimated: class {s['class']} at {tech} by {', '.join(s['estimators']) or 'none'}")
            else:
                lines.append(f"  {name:<24} dummy_storage (keeps nothing): 0 pJ")
        return lines


def _components(arch: Arch) -> list[Level]:
    return [*arch.levels, arch.compute]


def price_arch(arch: Arch, ert: EnergyTable | None = None) -> PricedArch:
    """Energies for every level and the compute: from ``ert`` when given, else from the estimators."""
    return _from_ert(arch, ert) if ert is not None else _from_estimators(arch)


def _from_ert(arch: Arch, ert: EnergyTable) -> PricedArch:
    energy = dict(ert.energy_pJ)
    sources: dict[str, dict[str, Any]] = {}
    for lvl in _components(arch):
        key = ert.table_key(energy, lvl.path, lvl.name)
        if key is not None:
            sources[lvl.name] = {"source": "ERT", "file": ert.source, "table": ert.table_names.get(key, key)}
        elif lvl.is_dummy:
            energy[lvl.path] = {"read": 0.0, "write": 0.0, "update": 0.0, "leak": 0.0}
            sources[lvl.name] = {"source": "dummy_storage"}
        else:
            have = ", ".join(ert.table_names.get(k, k) for k in ert.energy_pJ) or "none"
            raise InputError(ert.source, f"ERT.tables.{lvl.name}",
                             f"no energy table for component {lvl.path!r} (tables: {have})")
    return PricedArch(EnergyTable(energy, dict(ert.area_um2), ert.source, dict(ert.table_names)), sources)


def clock_MHz(attributes: dict[str, Any]) -> float | None:
    """Clock in MHz from bitloop's ``clock_MHz`` or Timeloop's ``global_cycle_seconds`` attribute."""
    if attributes.get("clock_MHz") is not None:
        return float(attributes["clock_MHz"])
    try:
        return 1e-6 / float(attributes["global_cycle_seconds"])
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def _instance_attributes(lvl: Level) -> dict[str, Any]:
    """A level's attributes as the estimators read them (leakage per cycle needs the clock)."""
    clock = clock_MHz(lvl.attributes)
    return dict(lvl.attributes) if clock is None else {**lvl.attributes, "clock_MHz": clock}


def _from_estimators(arch: Arch) -> PricedArch:
    import components

    instances = [components.ComponentInstance(l.path, l.component_class, _instance_attributes(l), l.instances)
                 for l in _components(arch)]
    try:
        tables = components.resolve(instances, technology=DEFAULT_TECHNOLOGY)
    except InputError as exc:
        if exc.source == "<arch>":   # the arch's own class or attribute: name the arch file
            raise InputError(arch.source, exc.key, exc.expected) from None
        raise
    library = components.load_library()
    sources: dict[str, dict[str, Any]] = {}
    for lvl, inst in zip(_components(arch), instances):
        if lvl.is_dummy:
            sources[lvl.name] = {"source": "dummy_storage"}
            continue
        estimators = sorted({e for r in tables.provenance[lvl.path]
                             for e in [r.get("area_estimator"), *r.get("action_estimators", {}).values()] if e})
        cls = library.get(lvl.component_class)
        sources[lvl.name] = {
            "source": "estimator", "class": lvl.component_class,
            "technology": str(inst.attributes.get("technology", DEFAULT_TECHNOLOGY)),
            "technology_given": "technology" in inst.attributes,
            "library": cls.source if cls is not None else None,
            "estimators": estimators,
        }
    ert = EnergyTable({k: dict(v) for k, v in tables.ert.items()}, dict(tables.art), f"{arch.source} (bitloop estimators)")
    return PricedArch(ert, sources)


def compare_with_ert(arch: Arch, ert: EnergyTable) -> list[tuple[str, str, str, float, float]]:
    """(component, class, action, ERT pJ, bitloop estimate pJ) for each action of each ERT table,
    so an Accelergy user can see how bitloop's estimators relate to the tables they know."""
    published = price_arch(arch, ert)
    estimated = price_arch(arch)
    rows = []
    for lvl in _components(arch):
        if lvl.is_dummy:
            continue
        key = EnergyTable.table_key(published.ert.energy_pJ, lvl.path, lvl.name)
        for action, value in published.ert.energy_pJ[key].items():
            rows.append((lvl.name, lvl.component_class, action, value, estimated.ert.energy(lvl.path, lvl.name, action)))
    return rows


def main(argv: list[str] | None = None) -> None:
    """``python -m mapper.energy_sources ARCH ERT``: bitloop's estimates next to an ERT, as a markdown table."""
    import sys

    from mapper.arch import load_arch
    from mapper.ert import load_ert

    arch_path, ert_path = (argv if argv is not None else sys.argv[1:])[:2]
    print("| component | class | action | ERT pJ | bitloop pJ | ratio |")
    print("|---|---|---|---|---|---|")
    for name, cls, action, ert_pj, est_pj in compare_with_ert(load_arch(arch_path, spatial_dummies=True), load_ert(ert_path)):
        ratio = f"{est_pj / ert_pj:.2f}" if ert_pj else "-"
        print(f"| {name} | {cls} | {action} | {ert_pj:.4g} | {est_pj:.4g} | {ratio} |")


if __name__ == "__main__":
    main()
