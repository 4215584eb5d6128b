"""Energy and area reference tables (Accelergy ERT.yaml / ART.yaml) and their lookup rules.

Table names are matched to arch components as Timeloop does
(``src/model/topology.cpp`` ``Topology::Specs::ParseAccelergyERT``): Accelergy's instance
range suffix (``system.PE.Buffer[1..16]``) is dropped, then the full dotted path or, failing
that, the last name component is looked up.
"""

from __future__ import annotations

import os
import re
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
_RANGE_RE = re.compile(r"\[\d+\.\.\d+\]")


def strip_instance_range(name: str) -> str:
    """``system.PE[0..3].Buffer[1..16]`` -> ``system.PE.Buffer`` (Accelergy's instance ranges)."""
    return _RANGE_RE.sub("", name)


@dataclass
class EnergyTable:
    """pJ per action for each component, keyed by full path; looked up by path or last name component.

    ``table_names``: path -> the table's name as written in the ERT file (for provenance).
    """

    energy_pJ: dict[str, dict[str, float]] = field(default_factory=dict)
    area_um2: dict[str, float] = field(default_factory=dict)
    source: str = "<ert>"
    table_names: dict[str, str] = field(default_factory=dict)

    def _entry(self, table: dict[str, Any], path: str, name: str) -> Any:
        key = self.table_key(table, path, name)
        return None if key is None else table[key]

    @staticmethod
    def table_key(table: dict[str, Any], path: str, name: str) -> str | None:
        """The key of ``table`` that prices component ``path`` (full path first, then last name)."""
        if path in table:
            return path
        for key in table:
            if key.split(".")[-1] == name:
                return key
        return None

    def has_table(self, path: str, name: str) -> bool:
        """True when the ERT has an energy table for component ``path``."""
        return self.table_key(self.energy_pJ, path, name) is not None

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
    names: dict[str, str] = {}
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
        energy[strip_instance_range(table["name"])] = entry
        names[strip_instance_range(table["name"])] = table["name"]
    areas: dict[str, float] = {}
    if art is not None:
        art = normalize_keys(art)
        art_tables = art.get("ART", {}).get("tables") if isinstance(art, dict) else None
        if not isinstance(art_tables, list):
            raise InputError(source, "ART.tables", "expected a list of component areas")
        for i, table in enumerate(art_tables):
            if not isinstance(table, dict) or not isinstance(table.get("name"), str):
                raise InputError(source, f"ART.tables[{i}].name", "expected a component name")
            areas[strip_instance_range(table["name"])] = as_float(table.get("area"), source, f"ART.tables[{i}].area", minimum=0.0)
    return EnergyTable(energy, areas, source, names)


def load_ert(path: str | os.PathLike, art_path: str | os.PathLike | None = None) -> EnergyTable:
    """Read an ERT.yaml file (and optionally an ART.yaml)."""
    art = load_yaml(art_path) if art_path is not None else None
    return ert_from_dict(load_yaml(path), path, art)
