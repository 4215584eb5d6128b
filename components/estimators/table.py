"""Table estimator: CSV rows of attributes, action, energy (pJ) and area (um^2).

CSV columns: ``class`` (required), ``action``, ``energy_pJ``, ``area_um2``, ``technology``
and any attribute columns. A cell ``*`` (or empty) is a wildcard. ``class`` accepts shell
patterns (``*_adder``). When a row has a ``width`` and the query's width differs, energy and
area scale linearly with width (nearest width row preferred). When a row's ``technology``
differs from the query's, Stillmaker-Baas scaling is applied (see technology.py).
A ``# accuracy: N`` comment line sets the estimator accuracy (default 90, above built-ins).
Area-only rows use action ``*`` (or leave it empty) with an ``area_um2`` value.
"""

from __future__ import annotations

import csv
import fnmatch
import os
import re
from pathlib import Path
from typing import Any

from workloads.yamlio import InputError

from .base import Estimator, PrimitiveQuery
from .technology import area_scale, energy_scale, parse_node

RESERVED = ("class", "action", "energy_pJ", "area_um2", "technology")
_ACCURACY_RE = re.compile(r"^#\s*accuracy\s*[:=]\s*(?P<v>[0-9.]+)\s*$", re.IGNORECASE)


def _wild(value: str | None) -> bool:
    return value is None or value.strip() in ("", "*")


def _matches(cell: str, value: Any) -> bool:
    if _wild(cell):
        return True
    if value is None:
        return False
    try:
        return float(cell) == float(value)
    except (TypeError, ValueError):
        return str(cell).strip().lower() == str(value).strip().lower()


class TableEstimator(Estimator):
    """Estimator backed by one CSV file."""

    def __init__(self, path: str | os.PathLike, accuracy: float | None = None, name: str | None = None):
        self.path = Path(path)
        self.name = name or f"table:{self.path.name}"
        self.rows, file_accuracy = self._read(self.path)
        self.accuracy = float(accuracy if accuracy is not None else (file_accuracy if file_accuracy is not None else 90.0))

    @staticmethod
    def _read(path: Path) -> tuple[list[dict[str, str]], float | None]:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise InputError(path, None, "estimator table not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(path, None, f"cannot read estimator table ({exc})") from None
        accuracy = None
        body = []
        for line in lines:
            match = _ACCURACY_RE.match(line.strip())
            if match:
                accuracy = float(match["v"])
            elif line.strip() and not line.lstrip().startswith("#"):
                body.append(line)
        reader = csv.DictReader(body)
        if not reader.fieldnames or "class" not in reader.fieldnames:
            raise InputError(path, "header", "expected a CSV header with a 'class' column")
        if "energy_pJ" not in reader.fieldnames and "area_um2" not in reader.fieldnames:
            raise InputError(path, "header", "expected an 'energy_pJ' and/or 'area_um2' column")
        rows = []
        for i, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            for col in ("energy_pJ", "area_um2"):
                if not _wild(row.get(col)):
                    try:
                        float(row[col])
                    except ValueError:
                        raise InputError(path, f"row {i}.{col}", f"expected a number, got {row[col]!r}") from None
            if not _wild(row.get("technology")):
                try:
                    parse_node(row["technology"])
                except ValueError as exc:
                    raise InputError(path, f"row {i}.technology", str(exc)) from None
            rows.append(row)
        return rows, accuracy

    def _candidates(self, query: PrimitiveQuery, column: str) -> list[dict[str, str]]:
        out = []
        for row in self.rows:
            if _wild(row.get(column)):
                continue
            if not fnmatch.fnmatch(query.class_name.lower(), row["class"].lower()):
                continue
            if column == "energy_pJ" and not (_wild(row.get("action")) or _matches(row["action"], query.action)):
                continue
            ok = True
            for key, cell in row.items():
                if key in RESERVED or key == "width" or _wild(cell):
                    continue
                if not _matches(cell, query.attributes.get(key)):
                    ok = False
                    break
            if ok:
                out.append(row)
        return out

    def _lookup(self, query: PrimitiveQuery, column: str) -> float | None:
        rows = self._candidates(query, column)
        if not rows:
            return None
        want_width = query.attributes.get("width")

        def rank(row: dict[str, str]) -> tuple[int, float, int]:
            exact_action = 0 if column == "area_um2" or not _wild(row.get("action")) else 1
            if _wild(row.get("width")) or want_width is None:
                return (exact_action, 0.0 if _wild(row.get("width")) else 1.0, 0)
            return (exact_action, abs(float(row["width"]) - float(want_width)), 0)

        row = min(rows, key=rank)
        value = float(row[column])
        if not _wild(row.get("width")) and want_width is not None:
            value *= float(want_width) / float(row["width"])
        tech = query.attributes.get("technology")
        if not _wild(row.get("technology")) and tech is not None:
            scale = energy_scale if column == "energy_pJ" else area_scale
            value *= scale(row["technology"], tech)
        return value

    def energy(self, query: PrimitiveQuery) -> float | None:
        return self._lookup(query, "energy_pJ")

    def area(self, query: PrimitiveQuery) -> float | None:
        return self._lookup(query, "area_um2")
