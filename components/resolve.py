"""Resolve arch component instances to energy per action (pJ) and area (um^2).

Compound classes (components.library) expand recursively into subcomponents; primitives
are priced by the estimator of highest accuracy that supports them (user plug-ins first
on ties). Attribute defaults and every scale are restricted expressions.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from workloads.yamlio import InputError

from .estimators.base import PrimitiveQuery
from .estimators.dram import DRAMEstimator
from .estimators.logic import LogicEstimator
from .estimators.plugins import load_plugins
from .estimators.sram import SRAMEstimator
from .expressions import ExpressionError, evaluate, evaluate_value
from .compound import MUST_SPECIFY, ComponentClass, Library, SubAction, load_library
from .tables import ComponentTables

INHERITED = ("technology", "clock_MHz", "design_family")      # passed down to subcomponents unless set there
AUTO_ACTIONS = ("leak", "idle")              # summed over subcomponents (x count x area_scale) when a class omits them


@dataclass(frozen=True)
class ComponentInstance:
    """One arch component: dotted ``path``, class, attributes and instance ``count``."""

    path: str
    component_class: str
    attributes: dict[str, Any] = field(default_factory=dict)
    count: int = 1


def instances_from_arch(arch: Any) -> list[ComponentInstance]:
    """One instance per arch level (storage levels, then compute), duck-typed on ``mapper.arch.Arch``.

    Uses each level's ``path``, ``component_class``, ``attributes`` and ``instances``.
    """
    levels = [*getattr(arch, "levels", ()), getattr(arch, "compute")]
    return [ComponentInstance(lvl.path, lvl.component_class, dict(lvl.attributes), int(lvl.instances)) for lvl in levels]


def builtin_estimators() -> list[Any]:
    """The estimators bitloop ships (SRAM, DRAM, logic)."""
    return [SRAMEstimator(), DRAMEstimator(), LogicEstimator()]


def _freeze(d: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, v if not isinstance(v, (list, dict)) else repr(v)) for k, v in d.items()))


@dataclass
class _Where:
    """Where a value came from, for error messages."""

    source: str
    key: str


class Resolver:
    """Evaluates classes against a library and a list of estimators (memoized)."""

    def __init__(self, library: Library, estimators: Sequence[Any]):
        self.library = library
        self.estimators = list(estimators)
        self._area: dict[tuple, tuple[float, list]] = {}
        self._energy: dict[tuple, tuple[float, list]] = {}

    # ---- attributes -----------------------------------------------------------------
    def bind(self, cls: ComponentClass, given: Mapping[str, Any], where: _Where) -> dict[str, Any]:
        """Evaluate ``cls``'s attribute defaults around the ``given`` values."""
        values = dict(given)
        pending = {k: v for k, v in cls.attributes.items() if k not in values}
        missing = [k for k, v in pending.items() if isinstance(v, str) and v.strip() == MUST_SPECIFY]
        if missing:
            raise InputError(cls.source, f"{cls.name}.attributes.{missing[0]}",
                             f"required attribute missing (must_specify) for {where.key or cls.name}")
        for _ in range(len(pending) + 1):
            progress = False
            for k in list(pending):
                try:
                    values[k] = evaluate_value(pending[k], values)
                except ExpressionError as exc:
                    if "unknown name" in str(exc) and any(n in str(exc) for n in map(repr, pending)):
                        continue  # depends on a default not evaluated yet
                    raise InputError(cls.source, f"{cls.name}.attributes.{k}", f"bad expression {pending[k]!r}: {exc}") from None
                del pending[k]
                progress = True
            if not pending or not progress:
                break
        if pending:
            k = next(iter(pending))
            raise InputError(cls.source, f"{cls.name}.attributes.{k}",
                             f"cannot evaluate {pending[k]!r} (cyclic or unknown attribute references)")
        return values

    def _eval(self, value: Any, names: Mapping[str, Any], source: str, key: str, numeric: bool = False) -> Any:
        try:
            out = evaluate(value, names) if (numeric and isinstance(value, str)) else evaluate_value(value, names)
        except ExpressionError as exc:
            raise InputError(source, key, f"bad expression {value!r}: {exc}") from None
        if numeric and (isinstance(out, bool) or not isinstance(out, (int, float))):
            raise InputError(source, key, f"expected a number, got {out!r}")
        if numeric and not (math.isfinite(out) and out >= 0):
            raise InputError(source, key, f"expected a finite number >= 0, got {value!r} = {out!r}")
        return out

    def sub_attributes(self, cls: ComponentClass, sub, values: Mapping[str, Any]) -> dict[str, Any]:
        attrs = {k: values[k] for k in INHERITED if k in values}
        for k, v in sub.attributes.items():
            attrs[k] = self._eval(v, values, cls.source, f"{cls.name}.{sub.key.split('.', 1)[1]}.attributes.{k}")
        return attrs

    def sub_count(self, cls: ComponentClass, sub, values: Mapping[str, Any]) -> int:
        n = self._eval(sub.count_expr, values, cls.source, f"{cls.name}.{sub.key.split('.', 1)[1]}.name", numeric=True)
        if n < 0 or float(n) != math.floor(n):
            raise InputError(cls.source, f"{cls.name}.{sub.key.split('.', 1)[1]}.name", f"instance count must be a non-negative integer, got {n}")
        return int(n)

    # ---- area -----------------------------------------------------------------------------
    def area(self, class_name: str, attrs: Mapping[str, Any], where: _Where, stack: tuple[str, ...] = (),
             prefix: str = "") -> tuple[float, list[dict]]:
        """(um^2 of one instance, primitive provenance records)."""
        key = (class_name, _freeze(attrs))
        if key in self._area:
            return self._area[key][0], _reprefix(self._area[key][1], prefix)
        cls = self.library.get(class_name)
        if cls is None:
            value, est = self._primitive(class_name, attrs, None, {}, where)
            records = [{"primitive": "", "class": class_name, "count": 1, "area_estimator": est}]
        else:
            self._check_cycle(cls, stack, where)
            values = self.bind(cls, attrs, where)
            value, records = 0.0, []
            for sub in cls.subcomponents:
                n = self.sub_count(cls, sub, values)
                sub_where = _Where(cls.source, f"{cls.name}.{sub.key.split('.', 1)[1]}.class")
                a, recs = self.area(sub.class_name, self.sub_attributes(cls, sub, values), sub_where,
                                    stack + (cls.name,), sub.name)
                scale = self._eval(sub.area_scale, values, cls.source, f"{cls.name}.{sub.key.split('.', 1)[1]}.area_scale", numeric=True)
                value += n * scale * a
                for r in recs:
                    records.append({**r, "count": r["count"] * n})
        self._area[key] = (value, records)
        return value, _reprefix(records, prefix)

    # ---- energy ---------------------------------------------------------------------------
    def energy(self, class_name: str, attrs: Mapping[str, Any], action: str, args: Mapping[str, Any],
               where: _Where, stack: tuple[str, ...] = (), prefix: str = "") -> tuple[float, list[dict]]:
        """(pJ of one ``action`` on one instance, primitive provenance records)."""
        key = (class_name, _freeze(attrs), action, _freeze(args))
        if key in self._energy:
            return self._energy[key][0], _reprefix(self._energy[key][1], prefix)
        cls = self.library.get(class_name)
        if cls is None:
            value, est = self._primitive(class_name, attrs, action, args, where)
            records = [{"primitive": "", "class": class_name, "action": action, "estimator": est}]
        else:
            self._check_cycle(cls, stack, where)
            value, records = self._compound_energy(cls, attrs, action, args, where, stack)
        self._energy[key] = (value, records)
        return value, _reprefix(records, prefix)

    def _compound_energy(self, cls: ComponentClass, attrs, action, args, where, stack):
        values = self.bind(cls, attrs, where)
        act = cls.actions.get(action)
        if act is None:
            if action not in AUTO_ACTIONS:
                raise InputError(cls.source, f"{cls.name}.actions",
                                 f"class has no action {action!r} (has: {', '.join(cls.actions) or 'none'}) for {where.key}")
            # leak/idle not defined by the class: every subcomponent's, weighted like its area
            # (count x area_scale), so a lane holding 1/16 of a PE leaks 1/16 of it
            total, records = 0.0, []
            for sub in cls.subcomponents:
                n = self.sub_count(cls, sub, values)
                skey = f"{cls.name}.{sub.key.split('.', 1)[1]}"
                scale = self._eval(sub.area_scale, values, cls.source, f"{skey}.area_scale", numeric=True)
                e, recs = self.energy(sub.class_name, self.sub_attributes(cls, sub, values), action, {},
                                      _Where(cls.source, f"{skey}.class"), stack + (cls.name,), sub.name)
                total += n * scale * e
                records += recs
            return total, records
        names = dict(values)
        for a, default in act.arguments.items():
            names[a] = self._eval(args.get(a, default), values, cls.source, f"{cls.name}.{act.key.split('.', 1)[1]}.arguments.{a}")
        total, records = 0.0, []
        for sa in act.subactions:
            sub = cls.subcomponent(sa.target)
            assert sub is not None  # checked when the library was read
            n = self._multiplicity(cls, sub, sa, values, names)
            if n == 0:
                continue
            akey = f"{cls.name}.{sa.key.split('.', 1)[1]}"
            scale = self._eval(sa.energy_scale, names, cls.source, f"{akey}.energy_scale", numeric=True)
            sub_args = {k: self._eval(v, names, cls.source, f"{akey}.arguments.{k}") for k, v in sa.arguments.items()}
            e, recs = self.energy(sub.class_name, self.sub_attributes(cls, sub, values), sa.action, sub_args,
                                  _Where(cls.source, f"{cls.name}.{sub.key.split('.', 1)[1]}.class"),
                                  stack + (cls.name,), sub.name)
            total += n * scale * e
            records += recs
        return total, records

    def _multiplicity(self, cls, sub, sa: SubAction, values, names) -> int:
        count = self.sub_count(cls, sub, values)
        if sa.index_lo is None:
            return count
        key = f"{cls.name}.{sa.key.split('.', 1)[1]}"
        lo = self._eval(sa.index_lo, names, cls.source, key, numeric=True)
        hi = self._eval(sa.index_hi, names, cls.source, key, numeric=True)
        if not 0 <= lo <= hi < max(count, 1) and not (count == 0):
            raise InputError(cls.source, key, f"index range [{lo}..{hi}] outside {sub.name}[0..{count - 1}]")
        return int(hi - lo + 1) if count else 0

    # ---- primitives -----------------------------------------------------------------------
    def _primitive(self, class_name: str, attrs, action, args, where: _Where) -> tuple[float, str]:
        query = PrimitiveQuery(class_name, dict(attrs), action, dict(args))
        best: tuple[float, int, Any, float] | None = None
        errors = []
        for i, est in enumerate(self.estimators):
            name = str(getattr(est, "name", type(est).__name__))
            try:
                value = est.energy(query) if action is not None else est.area(query)
            except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
                errors.append(f"{name}: {exc}")
                continue
            except Exception as exc:  # noqa: BLE001 - a user plug-in failed: their input error, named
                if isinstance(est, BUILTIN_TYPES):
                    raise
                raise InputError(where.source, where.key,
                                 f"estimator plug-in {name} raised {type(exc).__name__}: {exc}") from None
            if value is None:
                continue
            _check_estimate(value, name, query, where)
            acc = float(getattr(est, "accuracy", 0))
            if best is None or acc > best[0]:
                best = (acc, i, est, float(value))
        if best is None:
            what = f"action {action!r} of " if action is not None else "area of "
            detail = f" ({'; '.join(errors)})" if errors else ""
            known_class = any(_supports_class(e, class_name) for e in self.estimators)
            if errors or known_class:
                raise InputError(where.source, where.key, f"no estimator prices {what}{class_name!r}{detail}")
            raise InputError(where.source, where.key,
                             f"unknown class {class_name!r}: not in the component library and no estimator supports it")
        est = best[2]
        return best[3], str(getattr(est, "name", type(est).__name__))

    def _check_cycle(self, cls: ComponentClass, stack: tuple[str, ...], where: _Where) -> None:
        if cls.name in stack:
            chain = " -> ".join(stack[stack.index(cls.name):] + (cls.name,))
            raise InputError(where.source, where.key, f"cyclic subcomponents: {chain}")


BUILTIN_TYPES = (SRAMEstimator, DRAMEstimator, LogicEstimator)


def _check_estimate(value: Any, name: str, query: PrimitiveQuery, where: _Where) -> None:
    """An estimate must be a finite number >= 0 (pJ or um^2); else an error naming the estimator."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    if not ok:
        what = f"action {query.action!r} of" if query.action is not None else "area of"
        unit = "pJ" if query.action is not None else "um^2"
        attrs = ", ".join(f"{k}={v!r}" for k, v in query.attributes.items() if k not in INHERITED)
        raise InputError(where.source, where.key, f"estimator {name} returned {value!r} for {what} {query.class_name!r}"
                         f"{f' ({attrs[:160]})' if attrs else ''}; expected a finite number >= 0 {unit}")


def _supports_class(est: Any, class_name: str) -> bool:
    try:
        return est.area(PrimitiveQuery(class_name, {})) is not None
    except Exception:  # noqa: BLE001 - probing only: missing attributes mean "supports"
        return True


def _reprefix(records: list[dict], prefix: str) -> list[dict]:
    if not prefix:
        return records
    return [{**r, "primitive": f"{prefix}.{r['primitive']}" if r["primitive"] else prefix} for r in records]


def default_actions(cls: ComponentClass | None, class_name: str) -> list[str]:
    """Actions listed in the ERT for a class (its own, plus leak); primitives by family."""
    if cls is not None:
        names = list(cls.actions)
        return names + [a for a in AUTO_ACTIONS if a not in names]
    lowered = class_name.lower()
    if "sram" in lowered or "dram" in lowered or lowered in ("regfile", "register_file", "fifo", "reg", "register",
                                                             "aladdin_register"):
        return ["read", "write", "update", "leak"]
    return ["compute", "idle", "leak"]


def resolve(instances: Iterable[ComponentInstance], libraries: Iterable[str | os.PathLike] = (),
            estimators: Iterable[Any] = (), technology: str = "28nm", clock_MHz: float | None = None,
            base_dir: str | os.PathLike | None = None) -> ComponentTables:
    """Price every instance: ERT (pJ per action per instance), ART (um^2 per instance), provenance.

    Args:
        instances: arch components (:class:`ComponentInstance`).
        libraries: library names (``components/library/NAME.yaml``) or YAML paths, read after
            the built-in library files (later definitions override earlier ones).
        estimators: user plug-ins: CSV or .py paths (loaded only from these paths) or
            estimator objects; they are consulted before the built-ins.
        technology: default ``technology`` attribute for instances that do not set one.
        clock_MHz: default ``clock_MHz`` (for leak per cycle) for instances that do not set one.
        base_dir: folder that relative library/estimator paths are relative to.
    """
    library = load_library(libraries, base_dir=base_dir)
    plugin_paths = [os.path.join(base_dir, p) if base_dir and isinstance(p, (str, os.PathLike)) and not os.path.isabs(p) else p
                    for p in estimators]
    resolver = Resolver(library, load_plugins(plugin_paths) + builtin_estimators())
    tables = ComponentTables()
    for inst in instances:
        attrs = dict(inst.attributes)
        attrs.setdefault("technology", technology)
        if clock_MHz is not None:
            attrs.setdefault("clock_MHz", clock_MHz)
        where = _Where("<arch>", f"{inst.path}.class")
        cls = library.get(inst.component_class)
        area, area_records = resolver.area(inst.component_class, attrs, where)
        actions: dict[str, float] = {}
        arguments: dict[str, dict[str, Any] | None] = {}
        by_primitive: dict[str, dict[str, Any]] = {}
        for r in area_records:
            by_primitive[r["primitive"]] = {"primitive": r["primitive"] or inst.path, "class": r["class"],
                                            "count": r["count"], "area_estimator": r["area_estimator"],
                                            "action_estimators": {}}
        for action in default_actions(cls, inst.component_class):
            try:
                energy, records = resolver.energy(inst.component_class, attrs, action, {}, where)
            except InputError:
                if action in AUTO_ACTIONS or cls is None:
                    continue  # primitive without this action (e.g. leak of a table entry)
                raise
            actions[action] = energy
            act = cls.actions.get(action) if cls is not None else None
            arguments[action] = dict(act.arguments) if act is not None and act.arguments else None
            for r in records:
                entry = by_primitive.setdefault(r["primitive"], {"primitive": r["primitive"] or inst.path,
                                                                 "class": r["class"], "count": None,
                                                                 "area_estimator": None, "action_estimators": {}})
                entry["action_estimators"][r["action"]] = r["estimator"]
        tables.ert[inst.path] = actions
        tables.art[inst.path] = area
        tables.arguments[inst.path] = arguments
        tables.provenance[inst.path] = list(by_primitive.values())
        tables.counts[inst.path] = int(inst.count)
        tables.classes[inst.path] = inst.component_class
    return tables
