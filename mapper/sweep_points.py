"""Sweep points: ``--param PATH=V1,V2,...`` parsing, grid/zip expansion and per-point spec
derivation with errors that name the ``--param`` and the spec key.

A point is a dict ``{PATH: value}``; its spec is ``base.with_overrides(point)``, whose
energies and areas are re-derived from the changed raw data.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, Sequence

from mapper.spec import Spec, set_path
from workloads.provenance import digest
from workloads.yamlio import InputError

MODES = ("grid", "zip")


def parse_value(text: str) -> Any:
    """One value: an int (``64``), a float (``0.5``, ``1e3``), ``true``/``false``, else the string."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_param(text: str) -> tuple[str, list[Any]]:
    """``PATH=V1,V2,...`` -> (PATH, [values]); InputError naming the ``--param`` otherwise."""
    path, sep, rest = text.partition("=")
    path = path.strip()
    values = [v.strip() for v in rest.split(",")]
    if not sep or not path or not rest.strip() or any(not v for v in values):
        raise InputError(f"--param {text}", path or "PATH", "expected PATH=V1,V2,... (e.g. arch.GLB.depth=4096,8192)")
    if any(not part for part in path.split(".")):
        raise InputError(f"--param {text}", path, "expected a dotted path such as arch.GLB.depth or work_model.sub_group")
    return path, [parse_value(v) for v in values]


def parse_params(texts: Sequence[str]) -> dict[str, list[Any]]:
    """Several ``--param`` texts; a path given twice is an error."""
    params: dict[str, list[Any]] = {}
    for text in texts:
        path, values = parse_param(text)
        if path in params:
            raise InputError(f"--param {text}", path, "this path is already swept by an earlier --param")
        params[path] = values
    return params


def check_params(params: dict[str, list[Any]], mode: str) -> None:
    """Shape checks: a mode name, at least one parameter, non-empty value lists, equal lengths for zip."""
    if mode not in MODES:
        raise InputError("<sweep>", "mode", f"expected grid or zip, got {mode!r}")
    if not params:
        raise InputError("--param", "PATH", "give at least one --param PATH=V1,V2,...")
    for path, values in params.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise InputError(f"--param {path}", path, "expected a non-empty list of values")
    lengths = {len(v) for v in params.values()}
    if mode == "zip" and len(lengths) > 1:
        shown = ", ".join(f"{p} ({len(v)})" for p, v in params.items())
        raise InputError("--zip", ",".join(params), f"every --param needs the same number of values with --zip, got {shown}")


def expand_points(params: dict[str, list[Any]], mode: str = "grid") -> list[dict[str, Any]]:
    """All points: the cartesian product (grid, first parameter slowest) or element-wise (zip)."""
    check_params(params, mode)
    paths = list(params)
    combos = itertools.product(*params.values()) if mode == "grid" else zip(*params.values())
    return [dict(zip(paths, combo)) for combo in combos]


def _param_label(path: str, value: Any | None = None) -> str:
    return f"--param {path}" if value is None else f"--param {path}={value}"


def fingerprint(spec: Spec) -> str:
    """Digest of what a spec's results depend on (:meth:`Spec.resolved`), ignoring raw level
    attributes (their effect shows in the resolved energies, areas and level fields)."""
    resolved = spec.resolved()
    for level in [*resolved["arch"]["levels"], resolved["arch"]["compute"]]:
        level.pop("attributes", None)
    return digest(resolved)


def _derive(base: Spec, point: dict[str, Any]) -> Spec:
    """The overridden spec with its components, area and work/format models resolved (raises InputError)."""
    from mapper.bitlevel import layer_models

    spec = base.with_overrides(point)
    spec.ert  # noqa: B018 - resolve energies/areas now so bad values fail before any point runs
    _ = spec.area_um2
    layer_models(spec, None)
    return spec


def _attribute_is_new(base: Spec, path: str) -> bool:
    """True when ``arch.LEVEL.attr`` / ``pe.attr`` names an attribute the level does not have (own or inherited)."""
    parts = path.split(".")
    if parts[0] in ("arch", "architecture") and len(parts) == 3:
        level_name, attr = parts[1], parts[2]
    elif parts[0] == "pe" and len(parts) == 2:
        level_name, attr = base.arch.compute.name, parts[1]
    else:
        return False
    level = next((l for l in [*base.arch.levels, base.arch.compute] if l.name == level_name), None)
    if level is None or attr in ("meshX", "meshY"):
        return False  # a container node: its attributes are inherited by the levels below
    return attr not in level.attributes


def check_param_values(base: Spec, params: dict[str, list[Any]]) -> None:
    """Apply every value of every parameter alone to ``base``; errors name the ``--param`` and key.

    A parameter that sets an attribute the spec does not have and changes nothing the results
    depend on (arch shape, energies, areas, work/format models) is reported as a bad path,
    since a typo would otherwise sweep nothing.
    """
    base_print = fingerprint(base)
    for path, values in params.items():
        try:
            set_path(copy.deepcopy(base.raw), path, values[0], base.source)
        except InputError as exc:
            raise InputError(_param_label(path), exc.key, f"{exc.expected} (in {exc.source})") from None
        prints = set()
        for value in values:
            try:
                prints.add(fingerprint(_derive(base, {path: value})))
            except InputError as exc:
                raise InputError(_param_label(path, value), exc.key, f"{exc.expected} ({exc.source})") from None
        if _attribute_is_new(base, path) and prints == {base_print}:
            level = path.split(".")[1] if not path.startswith("pe.") else base.arch.compute.name
            attr = path.split(".")[-1]
            known = sorted(next(l.attributes for l in [*base.arch.levels, base.arch.compute] if l.name == level))
            raise InputError(_param_label(path), path,
                             f"{level} has no attribute {attr!r} and setting it changes nothing "
                             f"(its attributes: {', '.join(known)})")


def point_specs(base: Spec, points: list[dict[str, Any]]) -> list[Spec]:
    """The derived spec of every point (a combination that fails names all its parameters)."""
    specs = []
    for point in points:
        try:
            specs.append(_derive(base, point))
        except InputError as exc:
            label = " ".join(f"{p}={v}" for p, v in point.items())
            raise InputError(f"--param {label}", exc.key, f"{exc.expected} ({exc.source})") from None
    return specs


__all__ = ["MODES", "check_param_values", "check_params", "expand_points", "fingerprint", "parse_param", "parse_params", "parse_value", "point_specs"]
