"""Energy and area reference tables (Accelergy ERT.yaml / ART.yaml) and their lookup rules."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from workloads.yamlio import InputError, as_float, load_yaml, normalize_keys

# Timeloop's action-name fallbacks: when an action is missing, try these in order.
ACTION_FALLBACKS: dict[str, tuple[str, ...]] = {
    "read": ("read",),
    "fill": ("fill", "write"),
    "write": ("write", "fill"),
    "update": ("update", "write"),
    "mac": ("mac", "compute"),
    "compute": ("compute", "mac"),
    "idle": ("idle",),
    "leak": ("leak",),
}


OPTIONAL_ACTIONS = ("leak", "idle", "link_transfer")


@dataclass
class EnergyTable:
    """pJ per action for each component, keyed by full path; looked up by path or last name component."""

    energy_pJ: dict[str, dict[str, float]] = field(default_factory=dict)
    area_um2: dict[str, float] = field(default_factory=dict)
    source: str = "<ert>"

    def _entry(self, table: dict[str, Any], path: str, name: str) -> Any:
        if path in table:
            return table[path]
        for key, value in table.items():
            if key.split(".")[-1] == name:
                return value
        return None

    def energy(self, path: str, name: str, action: str) -> float:
        """pJ of one ``action`` on component ``path`` (matched by last name component); 0 for a
        missing optional action (leak, idle, link_transfer)."""
        actions = self._entry(self.energy_pJ, path, name)
        if actions is None:
            raise InputError(self.source, f"ERT.tables.{name}", f"no energy table for component {path!r}")
        for candidate in ACTION_FALLBACKS.get(action, (action,)):
            if candidate in actions:
                return actions[candidate]
        if action in OPTIONAL_ACTIONS:
            return 0.0
        raise InputError(self.source, f"ERT.tables.{path}.actions", f"no action {action!r} (has: {', '.join(actions)})")

    def area(self, path: str, name: str) -> float:
        """um^2 per instance (0 when the ART has no entry)."""
        value = self._entry(self.area_um2, path, name)
        return 0.0 if value is None else float(value)


def ert_from_dict(data: Any, source: str | os.PathLike = "<ert>", art: Any = None) -> EnergyTable:
    """Read Accelergy's ERT layout (``ERT: tables: [{name, actions: [{name, energy}]}]``), optionally an ART."""
    source = str(source)
    data = normalize_keys(data)
    if not isinstance(data, dict) or "ERT" not in data or not isinstance(data["ERT"], dict):
        raise InputError(source, "ERT", "missing required key (expected ERT: {tables: [...]})")
    tables = data["ERT"].get("tables")
    if not isinstance(tables, list):
        raise InputError(source, "ERT.tables", "expected a list of component tables")
    energy: dict[str, dict[str, float]] = {}
    for i, table in enumerate(tables):
        key = f"ERT.tables[{i}]"
        if not isinstance(table, dict) or not isinstance(table.get("name"), str):
            raise InputError(source, f"{key}.name", "expected a component name")
        actions = table.get("actions")
        if not isinstance(actions, list):
            raise InputError(source, f"{key}.actions", "expected a list of actions")
        entry: dict[str, float] = {}
        for j, action in enumerate(actions):
            akey = f"{key}.actions[{j}]"
            if not isinstance(action, dict) or not isinstance(action.get("name"), str):
                raise InputError(source, f"{akey}.name", "expected an action name")
            entry[action["name"]] = as_float(action.get("energy"), source, f"{akey}.energy", minimum=0.0)
        energy[table["name"]] = entry
    areas: dict[str, float] = {}
    if art is not None:
        art = normalize_keys(art)
        art_tables = art.get("ART", {}).get("tables") if isinstance(art, dict) else None
        if not isinstance(art_tables, list):
            raise InputError(source, "ART.tables", "expected a list of component areas")
        for i, table in enumerate(art_tables):
            if not isinstance(table, dict) or not isinstance(table.get("name"), str):
                raise InputError(source, f"ART.tables[{i}].name", "expected a component name")
            areas[table["name"]] = as_float(table.get("area"), source, f"ART.tables[{i}].area", minimum=0.0)
    return EnergyTable(energy, areas, source)


def load_ert(path: str | os.PathLike, art_path: str | os.PathLike | None = None) -> EnergyTable:
    """Read an ERT.yaml file (and optionally an ART.yaml)."""
    art = load_yaml(art_path) if art_path is not None else None
    return ert_from_dict(load_yaml(path), path, art)
