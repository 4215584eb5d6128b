"""ERT/ART tables (Accelergy output layout) and their atomic writing."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workloads.yamlio import dump_yaml, write_atomic

ERT_VERSION = 0.4


@dataclass
class ComponentTables:
    """Resolved energy/area of every arch component instance.

    Attributes:
        ert: path -> action -> pJ per action of one instance (default action arguments).
        art: path -> um^2 of one instance.
        provenance: path -> list of primitive records ``{primitive, class, count, area_estimator,
            action_estimators}`` saying which estimator priced each primitive.
        arguments: path -> action -> default arguments used (None when the action has none).
        counts: path -> number of instances in the arch.
        classes: path -> component class.
    """

    ert: dict[str, dict[str, float]] = field(default_factory=dict)
    art: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    arguments: dict[str, dict[str, dict[str, Any] | None]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)

    def energy(self, path: str, action: str) -> float:
        """pJ of ``action`` on one instance at ``path`` (Timeloop fallbacks; missing leak = 0)."""
        actions = self.ert[path]
        for name in _fallbacks(action):
            if name in actions:
                return actions[name]
        if action == "leak":
            return 0.0
        raise KeyError(f"{path}: no action {action!r} (has {sorted(actions)})")

    def to_ert_dict(self) -> dict[str, Any]:
        tables = []
        for path, actions in self.ert.items():
            args = self.arguments.get(path, {})
            tables.append({"name": path, "actions": [
                {"name": a, "arguments": args.get(a), "energy": _round(e)} for a, e in actions.items()]})
        return {"ERT": {"version": ERT_VERSION, "tables": tables}}

    def to_art_dict(self) -> dict[str, Any]:
        return {"ART": {"version": ERT_VERSION, "tables": [
            {"name": path, "area": _round(area)} for path, area in self.art.items()]}}

    def to_ert_yaml(self) -> str:
        """ERT.yaml text (pJ per action per instance)."""
        return dump_yaml(self.to_ert_dict())

    def to_art_yaml(self) -> str:
        """ART.yaml text (um^2 per instance)."""
        return dump_yaml(self.to_art_dict())

    def to_summary_yaml(self) -> str:
        """ERT_summary.yaml text: energies, area, instance count and primitive provenance."""
        rows = []
        for path, actions in self.ert.items():
            rows.append({
                "name": path,
                "class": self.classes.get(path),
                "instances": self.counts.get(path, 1),
                "area_um2": _round(self.art.get(path, 0.0)),
                "total_area_um2": _round(self.art.get(path, 0.0) * self.counts.get(path, 1)),
                "actions": [{"name": a, "energy": _round(e)} for a, e in actions.items()],
                "primitive_estimations": self.provenance.get(path, []),
            })
        return dump_yaml({"ERT_summary": {"version": ERT_VERSION, "table_summary": rows}})

    def write(self, out_dir: str | os.PathLike) -> list[Path]:
        """Atomically write ERT.yaml, ART.yaml and ERT_summary.yaml into ``out_dir``."""
        out = Path(out_dir)
        files = [(out / "ERT.yaml", self.to_ert_yaml()), (out / "ART.yaml", self.to_art_yaml()),
                 (out / "ERT_summary.yaml", self.to_summary_yaml())]
        for path, text in files:
            write_atomic(path, text)
        return [p for p, _ in files]


def _fallbacks(action: str) -> tuple[str, ...]:
    return {
        "fill": ("fill", "write"),
        "update": ("update", "write"),
        "mac": ("mac", "compute"),
        "compute": ("compute", "mac"),
    }.get(action, (action,))


def _round(x: float) -> float:
    return float(f"{x:.6g}")
