"""Accelergy v0.4 compound-component classes: reading and validating library YAML.

A library file holds::

    compound_components:
      version: 0.4
      classes:
      - name: my_pe
        attributes: {width: 8, n_lanes: must_specify, acc_width: "2*width + log2(n_lanes)"}
        subcomponents:
        - {name: "mul[0..n_lanes-1]", class: intmultiplier, attributes: {width_a: width, width_b: width}}
        actions:
        - name: compute
          arguments: {active: 1}          # optional action arguments with defaults
          subcomponents:
          - name: mul                     # all instances; mul[0] or mul[0..3] pick some
            actions: [{name: multiply, energy_scale: active}]

Attribute values and energy/area scales are restricted expressions (components.expressions).
Names in ``components/library/`` resolve to ``NAME.yaml``; other entries are file paths.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from workloads.yamlio import InputError, load_yaml, normalize_keys

from .expressions import ExpressionError, parse

LIBRARY_DIR = Path(__file__).resolve().parent / "library"
MUST_SPECIFY = "must_specify"
SUPPORTED_VERSIONS = (0.3, 0.4)
_INDEXED = re.compile(r"^\s*(?P<name>[A-Za-z_][\w.]*)\s*\[\s*(?P<lo>[^\]]+?)\s*\.\.\s*(?P<hi>[^\]]+?)\s*\]\s*$")
_SINGLE = re.compile(r"^\s*(?P<name>[A-Za-z_][\w.]*)\s*\[\s*(?P<idx>[^\].]+?)\s*\]\s*$")
_PLAIN = re.compile(r"^\s*[A-Za-z_][\w.]*\s*$")
_LOOKS_ARITHMETIC = re.compile(r"[()*/+%<>=]|\s-\s")


@dataclass(frozen=True)
class Subcomponent:
    """A subcomponent declaration: ``count`` copies (expression) of ``class_name``."""

    name: str
    class_name: str
    count_expr: str
    attributes: dict[str, Any]
    area_scale: Any
    key: str                       # dotted key of this entry in its file (for errors)


@dataclass(frozen=True)
class SubAction:
    """One sub-action of an action: ``action`` on ``target`` scaled by ``energy_scale``."""

    target: str                    # subcomponent name
    index_lo: str | None           # None = every instance
    index_hi: str | None
    action: str
    energy_scale: Any
    arguments: dict[str, Any]
    key: str


@dataclass(frozen=True)
class Action:
    name: str
    arguments: dict[str, Any]
    subactions: tuple[SubAction, ...]
    key: str


@dataclass(frozen=True)
class ComponentClass:
    """A compound component class as read from a library file."""

    name: str
    attributes: dict[str, Any]     # declared attributes -> default (raw) or MUST_SPECIFY
    subcomponents: tuple[Subcomponent, ...]
    actions: dict[str, Action]
    source: str
    key: str

    def subcomponent(self, name: str) -> Subcomponent | None:
        return next((s for s in self.subcomponents if s.name == name), None)


@dataclass
class Library:
    """Compound classes by name; later files override earlier ones."""

    classes: dict[str, ComponentClass] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def get(self, name: str) -> ComponentClass | None:
        return self.classes.get(name)


def library_path(entry: str | os.PathLike, base_dir: str | os.PathLike | None = None) -> Path:
    """Path of a library entry: a built-in name (``bitvert``) or a file path."""
    text = str(entry)
    builtin = LIBRARY_DIR / f"{text}.yaml"
    p = Path(text)
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    try:
        if not any(ch in text for ch in "/\\") and not text.endswith((".yaml", ".yml")) and builtin.is_file():
            return builtin
        found = p.exists()
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise InputError(text[:80], None, f"not a readable component library path ({exc.strerror})") from None
    if not found:
        raise InputError(p, None, f"component library not found (built-in names: {', '.join(builtin_names())})")
    return p


def builtin_names() -> list[str]:
    """Names of the built-in library files (``components/library/*.yaml``)."""
    return sorted(p.stem for p in LIBRARY_DIR.glob("*.yaml"))


def load_library(entries: Iterable[str | os.PathLike] = (), include_builtin: bool = True,
                 base_dir: str | os.PathLike | None = None) -> Library:
    """Read the built-in library files (unless disabled) and then ``entries`` in order."""
    lib = Library()
    paths = [LIBRARY_DIR / f"{n}.yaml" for n in builtin_names()] if include_builtin else []
    paths += [library_path(e, base_dir) for e in entries]
    seen: set[Path] = set()
    for p in paths:
        rp = p.resolve()
        if rp in seen:
            continue
        seen.add(rp)
        for cls in read_library_file(p):
            lib.classes[cls.name] = cls
        lib.files.append(str(p))
    return lib


def read_library_file(path: str | os.PathLike) -> list[ComponentClass]:
    """Parse one compound-component YAML file into classes (structure checked, not evaluated).

    Parsed files are cached by path and content digest (an edit that keeps the size and the
    modification-time tick is still seen).
    """
    p = Path(path)
    try:
        key = (str(p.resolve()), hashlib.sha256(p.read_bytes()).hexdigest())
    except OSError:
        return _read_library_file(str(path))
    return list(_cached_read(key, str(path)))


@lru_cache(maxsize=128)
def _cached_read(key: tuple, src: str) -> tuple[ComponentClass, ...]:
    return tuple(_read_library_file(src))


def _read_library_file(path: str) -> list[ComponentClass]:
    src = str(path)
    data = normalize_keys(load_yaml(path))
    if not isinstance(data, dict) or "compound_components" not in data:
        raise InputError(src, "compound_components", "missing top-level key")
    top = data["compound_components"]
    if not isinstance(top, dict):
        raise InputError(src, "compound_components", "expected a mapping with version and classes")
    version = top.get("version")
    try:
        ok = float(version) in SUPPORTED_VERSIONS
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(src, "compound_components.version", f"expected 0.4 (or 0.3), got {version!r}")
    classes = top.get("classes")
    if not isinstance(classes, list):
        raise InputError(src, "compound_components.classes", "expected a list of classes")
    out: list[ComponentClass] = []
    names: set[str] = set()
    for i, raw in enumerate(classes):
        cls = _parse_class(raw, src, f"compound_components.classes[{i}]")
        if cls.name in names:
            raise InputError(src, f"{cls.key}.name", f"class {cls.name!r} defined twice in this file")
        names.add(cls.name)
        out.append(cls)
    return out


def _check_expr(value: Any, src: str, key: str) -> None:
    if isinstance(value, str) and value.strip() != MUST_SPECIFY:
        try:
            parse(value)
        except ExpressionError as exc:
            # plain strings (``28nm``, ``LPDDR4``) do not parse and are fine; a string with
            # arithmetic or a call that does not parse, or a forbidden construct, is an error
            if "not allowed" in str(exc) or _LOOKS_ARITHMETIC.search(value):
                raise InputError(src, key, f"bad expression {value!r}: {exc}") from None


def _parse_class(raw: Any, src: str, key: str) -> ComponentClass:
    if not isinstance(raw, dict):
        raise InputError(src, key, "expected a mapping (a compound class)")
    name = raw.get("name")
    if not isinstance(name, str) or not _PLAIN.match(name):
        raise InputError(src, f"{key}.name", f"expected a class name, got {name!r}")
    ckey = name  # errors below name the class, then the key inside it
    attrs = raw.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise InputError(src, f"{ckey}.attributes", "expected a mapping of attribute: default")
    for a, v in attrs.items():
        _check_expr(v, src, f"{ckey}.attributes.{a}")
    subs_raw = raw.get("subcomponents") or []
    if not isinstance(subs_raw, list):
        raise InputError(src, f"{ckey}.subcomponents", "expected a list")
    subs = tuple(_parse_sub(s, src, f"{ckey}.subcomponents[{j}]") for j, s in enumerate(subs_raw))
    sub_names = [s.name for s in subs]
    dup = {n for n in sub_names if sub_names.count(n) > 1}
    if dup:
        raise InputError(src, f"{ckey}.subcomponents", f"duplicate subcomponent name(s) {sorted(dup)}")
    acts_raw = raw.get("actions") or []
    if not isinstance(acts_raw, list):
        raise InputError(src, f"{ckey}.actions", "expected a list of actions")
    actions: dict[str, Action] = {}
    for j, a in enumerate(acts_raw):
        act = _parse_action(a, src, f"{ckey}.actions[{j}]", {s.name for s in subs})
        if act.name in actions:
            raise InputError(src, f"{ckey}.actions[{j}].name", f"action {act.name!r} defined twice")
        actions[act.name] = act
    return ComponentClass(name=name, attributes=dict(attrs), subcomponents=subs, actions=actions, source=src, key=ckey)


def _parse_sub(raw: Any, src: str, key: str) -> Subcomponent:
    if not isinstance(raw, dict):
        raise InputError(src, key, "expected a mapping with name and class")
    name = raw.get("name")
    cls = raw.get("class")
    if not isinstance(name, str):
        raise InputError(src, f"{key}.name", "missing subcomponent name")
    if not isinstance(cls, str) or not cls.strip():
        raise InputError(src, f"{key}.class", f"subcomponent {name!r} needs a class")
    match = _INDEXED.match(name)
    if match:
        lo = match["lo"].strip()
        if lo != "0":
            raise InputError(src, f"{key}.name", f"instance range must start at 0 (name[0..N-1]), got {name!r}")
        base, count = match["name"], f"({match['hi']}) + 1"
        _check_expr(match["hi"], src, f"{key}.name")
    elif _PLAIN.match(name):
        base, count = name.strip(), "1"
    else:
        raise InputError(src, f"{key}.name", f"expected 'name' or 'name[0..N-1]', got {name!r}")
    attrs = raw.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise InputError(src, f"{key}.attributes", "expected a mapping")
    for a, v in attrs.items():
        _check_expr(v, src, f"{key}.attributes.{a}")
    area_scale = raw.get("area_scale", raw.get("area_share", 1))
    _check_expr(area_scale, src, f"{key}.area_scale")
    return Subcomponent(name=base, class_name=cls.strip(), count_expr=count, attributes=dict(attrs),
                        area_scale=area_scale, key=key)


def _parse_action(raw: Any, src: str, key: str, sub_names: set[str]) -> Action:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise InputError(src, key, "expected an action with a name")
    name = raw["name"]
    args = raw.get("arguments") or {}
    if not isinstance(args, dict):
        raise InputError(src, f"{key}.arguments", "expected a mapping of argument: default")
    subs_raw = raw.get("subcomponents") or []
    if not isinstance(subs_raw, list):
        raise InputError(src, f"{key}.subcomponents", "expected a list")
    subactions: list[SubAction] = []
    for j, s in enumerate(subs_raw):
        skey = f"{key}.subcomponents[{j}]"
        if not isinstance(s, dict) or not isinstance(s.get("name"), str):
            raise InputError(src, skey, "expected a mapping with the subcomponent name")
        target, lo, hi = _parse_target(s["name"], src, f"{skey}.name")
        if target not in sub_names:
            raise InputError(src, f"{skey}.name", f"unknown subcomponent {target!r} (declared: {sorted(sub_names)})")
        acts = s.get("actions") or []
        if not isinstance(acts, list) or not acts:
            raise InputError(src, f"{skey}.actions", "expected a non-empty list of sub-actions")
        for k, a in enumerate(acts):
            akey = f"{skey}.actions[{k}]"
            if not isinstance(a, dict) or not isinstance(a.get("name"), str):
                raise InputError(src, akey, "expected a sub-action with a name")
            scale = a.get("energy_scale", a.get("action_share", 1))
            _check_expr(scale, src, f"{akey}.energy_scale")
            sargs = a.get("arguments") or {}
            if not isinstance(sargs, dict):
                raise InputError(src, f"{akey}.arguments", "expected a mapping")
            for an, av in sargs.items():
                _check_expr(av, src, f"{akey}.arguments.{an}")
            subactions.append(SubAction(target=target, index_lo=lo, index_hi=hi, action=a["name"],
                                        energy_scale=scale, arguments=dict(sargs), key=akey))
    return Action(name=name, arguments=dict(args), subactions=tuple(subactions), key=key)


def _parse_target(text: str, src: str, key: str) -> tuple[str, str | None, str | None]:
    match = _INDEXED.match(text)
    if match:
        return match["name"], match["lo"], match["hi"]
    match = _SINGLE.match(text)
    if match:
        return match["name"], match["idx"], match["idx"]
    if _PLAIN.match(text):
        return text.strip(), None, None
    raise InputError(src, key, f"expected 'name', 'name[i]' or 'name[a..b]', got {text!r}")
