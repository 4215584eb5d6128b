"""Paper-table targets, model predictions and the fit of the 28 nm logic cell costs.

``python -m components.calibrate --fit`` refits ``components/data/logic_cells_28nm.csv`` and
``logic_factors_28nm.csv`` from the targets whose role is ``calibrate`` (cells and families) or
``refine`` (the refine families only) in ``components/data/paper_targets.yaml``. ``--loo``
measures held-out accuracy: for every row that a fit uses, refit without that row (both its
quantities) and predict it; the values go to ``components/data/calibration_held_out.csv`` and
the calibration tables of docs/components.md (``--render`` regenerates those alone). Without
flags it prints paper vs model for every target (calibrated, refined and predicted).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workloads.yamlio import load_yaml, write_atomic

from .estimators.logic import CELLS_CSV, FACTORS_CSV, LogicEstimator, load_cells, load_factors
from .estimators.dram import DRAMEstimator
from .estimators.sram import SRAMEstimator
from .compound import load_library
from .resolve import Resolver, _Where

TARGETS = Path(__file__).resolve().parent / "data" / "paper_targets.yaml"
QUANTITIES = ("area_um2", "power_mW")
# (target quantity, cell field fitted to it, factor kind); areas are fitted before energies
FIT_FIELDS = (("area_um2", "area_um2", "area"), ("power_mW", "energy_pJ", "energy"))


@dataclass(frozen=True)
class Target:
    """One published number: ``quantity`` of ``class_name`` with ``attributes``."""

    id: str
    paper: str
    table: str
    class_name: str
    attributes: dict[str, Any]
    clock_MHz: float
    quantity: str
    value: float
    role: str
    include_leak: bool = True


def load_targets(path: str | Path = TARGETS) -> list[Target]:
    """Every (target, quantity) pair listed in the targets file."""
    out = []
    for row in load_yaml(path)["targets"]:
        roles = row.get("role", {})
        for q in QUANTITIES:
            if q in row:
                role = roles.get(q, "predict") if isinstance(roles, dict) else str(roles)
                out.append(Target(row["id"], row["paper"], str(row["table"]), row["class"], dict(row.get("attributes") or {}),
                                  float(row["clock_MHz"]), q, float(row[q]), role, bool(row.get("leak", True))))
    return out


def load_refine_families(path: str | Path = TARGETS) -> list[str]:
    """Design families fitted in stage 2 of :func:`fit_cells` (``refine_families`` of the targets file)."""
    return [str(f) for f in load_yaml(path).get("refine_families") or []]


def _resolver(cells: dict[str, dict[str, float]] | None = None, factors: dict[str, float] | None = None) -> Resolver:
    logic = LogicEstimator()
    if cells is not None:
        logic.cells = cells
    if factors is not None:
        logic.factors = factors
    return Resolver(_library(), [SRAMEstimator(), DRAMEstimator(), logic])


_LIBRARY: list = []


def _library():
    if not _LIBRARY:
        _LIBRARY.append(load_library())
    return _LIBRARY[0]


def _attrs(t: Target) -> dict[str, Any]:
    return {"technology": "28nm", "clock_MHz": t.clock_MHz, **t.attributes}


def model_value(target: Target, cells: dict[str, dict[str, float]] | None = None, resolver: Resolver | None = None,
                factors: dict[str, float] | None = None) -> float:
    """The library's value for a target: area (um^2) or power (mW) at the target's clock.

    Power is (compute + leak) energy per cycle x clock; targets with ``leak: false`` use
    the compute energy only.
    """
    r = resolver or _resolver(cells, factors)
    where = _Where("<targets>", target.id)
    if target.quantity == "area_um2":
        return r.area(target.class_name, _attrs(target), where)[0]
    energy = r.energy(target.class_name, _attrs(target), "compute", {}, where)[0]
    if target.include_leak:
        energy += r.energy(target.class_name, _attrs(target), "leak", {}, where)[0]
    return energy * target.clock_MHz / 1000.0


def _unit_cells(base: dict[str, dict[str, float]], cell: str, field: str) -> dict[str, dict[str, float]]:
    out = {c: {k: 0.0 for k in v} for c, v in base.items()}
    out[cell][field] = 1.0
    return out


def _linear(t: Target, r: Resolver, field: str) -> float:
    where = _Where("<targets>", t.id)
    if field == "area_um2":
        return r.area(t.class_name, _attrs(t), where)[0]
    return r.energy(t.class_name, _attrs(t), "compute", {}, where)[0] * t.clock_MHz / 1000.0


# (target, setting) -> the target's linear value with unit/zero/base cell costs: each target's
# entries of the design matrices depend on that target only, so fits on subsets of the targets
# (leave-one-out) reuse them. Valid while the component library and estimators stay as loaded.
_COLUMN_CACHE: dict[tuple[str, tuple], float] = {}


def design_matrices(targets: list[Target], field: str, families: list[str]
                    ) -> tuple[dict[str | None, tuple[np.ndarray, np.ndarray]], np.ndarray]:
    """Per design family that some target contains (``None`` = parts without a family factor):
    ``(X_logic, X_fp)``, per target and cell the coefficient of the cell cost in that family's
    parts, split into non-FP primitives and FP units (which carry the FP factor); and ``c0``, the
    part priced by other estimators (SRAM, DRAM), which does not depend on the cell costs.

    A family can cover a whole target (``design_family`` on the class) or some of its
    subcomponents (``design_family`` set on a subcomponent); the value of a target is
    ``sum_f factor_f * (X_logic[f] + fp * X_fp[f]) @ costs + c0``.
    """
    base = load_cells()
    kind = "area" if field == "area_um2" else "energy"
    zero = {c: {k: 0.0 for k in v} for c, v in base.items()}

    def column(cells: dict[str, dict[str, float]], fp: float, doubled: str | None) -> np.ndarray:
        factors = {"fp_area_factor": fp, "fp_energy_factor": fp}
        if doubled is not None:
            factors[f"{doubled}_{kind}_factor"] = 2.0
        setting = (field, tuple((c, tuple(sorted(v.items()))) for c, v in sorted(cells.items())), fp, doubled)
        missing = [t for t in targets if (repr(t), setting) not in _COLUMN_CACHE]
        if missing:
            r = _resolver(cells, factors)
            for t in missing:
                _COLUMN_CACHE[(repr(t), setting)] = _linear(t, r, field)
        return np.array([_COLUMN_CACHE[(repr(t), setting)] for t in targets])

    c0 = column(zero, 1.0, None)
    total = column(base, 1.0, None)
    present = [f for f in families if not np.array_equal(column(base, 1.0, f), total)]
    out: dict[str | None, tuple[np.ndarray, np.ndarray]] = {}
    rest_logic = rest_fp = None
    for fam in [None, *present]:
        x1, x2 = [], []
        for cell in base:
            unit = _unit_cells(base, cell, field)
            x1.append(column(unit, 1.0, fam) - c0)
            x2.append(column(unit, 2.0, fam) - c0)
        x1, x2 = np.array(x1).T, np.array(x2).T
        logic, fp = 2 * x1 - x2, x2 - x1
        if fam is None:
            rest_logic, rest_fp = logic, fp
        else:   # doubling the family's factor adds its parts once more
            out[fam] = (logic - rest_logic, fp - rest_fp)
    for fam in present:
        rest_logic, rest_fp = rest_logic - out[fam][0], rest_fp - out[fam][1]
    out[None] = (rest_logic, rest_fp)
    return out, c0


# Weak ridge on the log of every fitted factor (FP and family factors) toward its prior: a factor
# that no fitted row determines (e.g. the FP factors when the FP16 tile is left out) stays at its
# prior instead of drifting along a flat direction; determined factors move by < 0.05%, within
# the tolerance of the shipped fit (the shipped CSVs were fitted without it).
FACTOR_STRENGTH = 1e-5
ENERGY_KIND = {"AND2": "logic", "XOR2": "logic", "FA": "logic", "HA": "logic", "GE": "logic",
               "MUX2": "mux", "MUXW": "mux", "AO": "mux", "DFF": "flipflop", "WIRE": "wire"}


def _families(factors: dict[str, float], kind: str) -> list[str]:
    return sorted(k[: -len(f"_{kind}_factor")] for k in factors if k.endswith(f"_{kind}_factor") and not k.startswith("fp_"))


def fit_cells(targets: list[Target], prior: dict[str, dict[str, float]], prior_factors: dict[str, float],
              strength: float = 0.1, refine_families: list[str] | None = None,
              factor_strength: float = FACTOR_STRENGTH) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Fit cell costs, the FP factors and the design-family factors to the calibration targets.

    Stage 1: each cell cost is ``prior * exp(u)``; ``u`` (and the factors, in log space)
    minimize the squared log error of the ``calibrate`` targets plus ``strength * |u|^2``, which
    keeps cells that the targets do not constrain near their prior (textbook gate-equivalent)
    values, plus ``factor_strength`` times the squared log deviation of each factor from its
    prior (in both stages), which keeps a factor that no target determines at its prior. Energies are tied to the fitted areas by one energy density per cell kind.
    Families are the ``<family>_area_factor`` entries of the prior factors; a part's family is
    its ``design_family`` attribute, inherited from its parent unless a subcomponent sets it
    (none = reference, factor 1). Families that no calibration target contains keep their prior.
    Stage 2: with the cells and the other factors fixed, the ``refine_families`` factors (held
    at their prior in stage 1) minimize the squared log error of the ``calibrate`` and
    ``refine`` targets that contain them.
    """
    from scipy.optimize import least_squares

    refine = load_refine_families() if refine_families is None else list(refine_families)
    cal = [t for t in targets if t.role == "calibrate"]
    cells_out = {c: dict(v) for c, v in prior.items()}
    factors_out = dict(prior_factors)
    names = list(prior)
    for quantity, field, kind in FIT_FIELDS:
        rows = [t for t in cal if t.quantity == quantity]
        if not rows:
            continue
        parts, c0 = design_matrices(rows, field, _families(prior_factors, kind))
        y = np.array([t.value for t in rows])
        # fit the factors of the families that some calibration target contains (not the refine ones)
        families = [f for f in parts if f is not None and f not in refine]
        held = {f: prior_factors.get(f"{f}_{kind}_factor", 1.0) for f in parts if f is not None and f not in families}
        leak = np.zeros(len(rows))
        if quantity == "power_mW":
            # everything but the compute energy: logic leakage at the prior costs plus other
            # estimators' leakage (excluded for targets with leak: false)
            leak = _non_compute(rows, _resolver(prior, prior_factors), field)
        fam0 = np.array([prior_factors[f"{f}_{kind}_factor"] for f in families])
        if field == "area_um2":
            p0 = np.array([prior[c]["area_um2"] for c in names])
            basis = np.eye(len(names))
            reg = len(names)
        else:
            # energy per cell = fitted area x an energy density of its kind (logic, mux, flip-flop)
            areas = np.array([cells_out[c]["area_um2"] for c in names])
            kinds = sorted(set(ENERGY_KIND.values()))
            # (a cell without area, the wire, is its own kind with its prior energy as the unit)
            unit = np.array([areas[i] if areas[i] > 0 else prior[c]["energy_pJ"] for i, c in enumerate(names)])
            basis = np.array([[unit[i] if ENERGY_KIND[c] == k else 0.0 for k in kinds] for i, c in enumerate(names)])
            p0 = np.array([np.mean([prior[c]["energy_pJ"] / u for c, u in zip(names, unit) if ENERGY_KIND[c] == k])
                           for k in kinds])
            reg = len(kinds)
        m = len(p0)

        # v = [per-parameter log deviations from the prior (regularized), fp, families]
        def unpack(v: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
            return p0 * np.exp(v[:m]), prior_factors[f"fp_{kind}_factor"] * np.exp(v[m]), fam0 * np.exp(v[m + 1:])

        def resid(v: np.ndarray) -> np.ndarray:
            params, fp, fam = unpack(v)
            pred = _predict(parts, c0 + leak, basis @ params, fp, {**held, **dict(zip(families, fam))})
            return np.concatenate([np.log(np.maximum(pred, 1e-12) / y), np.sqrt(strength) * v[:reg],
                                   np.sqrt(factor_strength) * v[m:]])

        sol = least_squares(resid, np.zeros(m + 1 + len(families)))
        params, fp, fam = unpack(sol.x)
        costs = basis @ params
        for c, v in zip(names, costs):
            cells_out[c][field] = float(v)
            if field == "energy_pJ" and prior[c]["energy_pJ"] > 0:   # clock energy keeps its ratio
                cells_out[c]["idle_pJ"] = prior[c]["idle_pJ"] * float(v) / prior[c]["energy_pJ"]
        factors_out[f"fp_{kind}_factor"] = float(fp)
        for f, v in zip(families, fam):
            factors_out[f"{f}_{kind}_factor"] = float(v)
    if refine:
        _refine(targets, cells_out, factors_out, refine, factor_strength)
    return cells_out, factors_out


def _non_compute(rows: list[Target], r: Resolver, field: str) -> np.ndarray:
    """Per target, the power (mW) that the compute energy does not explain: leakage."""
    return np.array([model_value(t, resolver=r) - _linear(t, r, field) for t in rows])


def _predict(parts: dict[str | None, tuple[np.ndarray, np.ndarray]], base: np.ndarray, costs: np.ndarray, fp: float,
             scales: dict[str, float]) -> np.ndarray:
    """Target values from the per-family design matrices: ``base + sum_f scale_f (X_logic + fp X_fp) costs``."""
    pred = base.copy()
    for f, (x_logic, x_fp) in parts.items():
        pred += (1.0 if f is None else scales[f]) * (x_logic @ costs + fp * (x_fp @ costs))
    return pred


def _refine(targets: list[Target], cells: dict[str, dict[str, float]], factors: dict[str, float],
            refine: list[str], factor_strength: float) -> None:
    """Stage 2 of :func:`fit_cells`: fit the ``refine`` families' factors in place, cells fixed."""
    from scipy.optimize import least_squares

    for quantity, field, kind in FIT_FIELDS:
        # the calibrate and refine targets that contain a refine family
        r1, r2 = _resolver(cells, factors), _resolver(cells, {**factors, **{f"{f}_{kind}_factor": 2.0 for f in refine}})
        rows = [t for t in targets if t.role in ("calibrate", "refine") and t.quantity == quantity
                and _linear(t, r1, field) != _linear(t, r2, field)]
        if not rows:
            continue
        parts, base = design_matrices(rows, field, _families(factors, kind))
        fitted = [f for f in refine if f in parts]
        y = np.array([t.value for t in rows])
        if quantity == "power_mW":   # leakage follows the (already refined) areas
            base = base + _non_compute(rows, _resolver(cells, factors), field)
        costs = np.array([cells[c][field] for c in cells])
        scales = {f: factors.get(f"{f}_{kind}_factor", 1.0) for f in parts if f is not None}

        def resid(v: np.ndarray) -> np.ndarray:
            pred = _predict(parts, base, costs, factors[f"fp_{kind}_factor"], {**scales, **dict(zip(fitted, np.exp(v)))})
            return np.concatenate([np.log(np.maximum(pred, 1e-12) / y), np.sqrt(factor_strength) * v])

        sol = least_squares(resid, np.zeros(len(fitted)))
        for f, v in zip(fitted, np.exp(sol.x)):
            factors[f"{f}_{kind}_factor"] = float(v)


def write_cells(cells: dict[str, dict[str, float]], path: Path = CELLS_CSV) -> None:
    buf = io.StringIO()
    buf.write("# 28 nm standard-cell costs (components/estimators/logic.py); fitted by `python -m components.calibrate --fit`\n")
    buf.write("# to the calibrate-role targets of components/data/paper_targets.yaml (see docs/components.md).\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["cell", "area_um2", "energy_pJ", "idle_pJ", "leak_nW"])
    for c, v in cells.items():
        w.writerow([c] + [f"{v[k]:.6g}" for k in ("area_um2", "energy_pJ", "idle_pJ", "leak_nW")])
    write_atomic(path, buf.getvalue())


def write_factors(factors: dict[str, float], path: Path = FACTORS_CSV) -> None:
    lines = ["# Logic model factors (components/estimators/logic.py), fitted by `python -m components.calibrate --fit`;",
             "# see docs/components.md.", "name,value"]
    lines += [f"{k},{v:.6g}" for k, v in factors.items()]
    write_atomic(path, "\n".join(lines) + "\n")


def report(targets: list[Target] | None = None) -> list[tuple[Target, float]]:
    """(target, model value) for every target."""
    targets = targets or load_targets()
    r = _resolver()
    return [(t, model_value(t, resolver=r)) for t in targets]


# ---- held-out accuracy (leave one row out) --------------------------------------------------------
HELD_OUT_CSV = TARGETS.with_name("calibration_held_out.csv")
SKIP_DIGEST = (HELD_OUT_CSV.name, "calibration_doc.py")   # the held-out values themselves; doc rendering only
FITTED_ROLES = ("calibrate", "refine")


def fitted_rows(targets: list[Target]) -> list[str]:
    """Ids of the paper-table rows that some fit uses (a calibrate or refine role), in file order."""
    return list(dict.fromkeys(t.id for t in targets if t.role in FITTED_ROLES))


def _priors() -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    prior_path = Path(__file__).resolve().parent / "data" / "logic_cells_prior.csv"
    return load_cells(str(prior_path)), load_factors(str(prior_path.with_name("logic_factors_prior.csv")))


def held_out_values(targets: list[Target], row: str) -> dict[tuple[str, str], float]:
    """Leave-one-out for one paper-table row: refit everything (both stages) without the row's
    targets, then the model value of each of them, (id, quantity) -> value."""
    prior, prior_factors = _priors()
    cells, factors = fit_cells([t for t in targets if t.id != row], prior, prior_factors)
    r = _resolver(cells, factors)
    return {(t.id, t.quantity): model_value(t, resolver=r) for t in targets if t.id == row}


def inputs_digest() -> str:
    """Digest of every file of the components package that can change a fitted or held-out value
    (library, estimators and their data, priors, targets, this module); the held-out file itself
    and the doc renderer are left out."""
    import hashlib

    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.suffix in (".py", ".yaml", ".csv") and f.name not in SKIP_DIGEST and "__pycache__" not in f.parts:
            h.update(f.relative_to(root).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def write_held_out(targets: list[Target], path: Path = HELD_OUT_CSV) -> None:
    """Leave-one-out over every fitted row (minutes): ``path`` with one line per target and quantity:
    paper, fitted (all rows) and held-out model values; never-fitted rows are their own held-out."""
    held: dict[tuple[str, str], float] = {}
    for row in fitted_rows(targets):
        held.update(held_out_values(targets, row))
    buf = io.StringIO()
    buf.write(f"# Held-out calibration accuracy: `python -m components.calibrate --loo`; inputs digest {inputs_digest()}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "quantity", "role", "paper", "fitted", "held_out"])
    for t, v in report(targets):
        w.writerow([t.id, t.quantity, t.role, f"{t.value:.6g}", f"{v:.6g}", f"{held.get((t.id, t.quantity), v):.6g}"])
    write_atomic(path, buf.getvalue())


@dataclass(frozen=True)
class HeldOut:
    """One line of the held-out file (model values in the target's unit)."""

    id: str
    quantity: str
    role: str
    paper: float
    fitted: float
    held_out: float

    @property
    def fitted_ratio(self) -> float:
        return self.fitted / self.paper

    @property
    def held_out_ratio(self) -> float:
        return self.held_out / self.paper


def read_held_out(path: Path = HELD_OUT_CSV) -> tuple[str, list[HeldOut]]:
    """(inputs digest, rows) of the held-out file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    digest = lines[0].rsplit(" ", 1)[-1]
    rows = csv.DictReader(lines[1:])
    return digest, [HeldOut(r["id"], r["quantity"], r["role"], float(r["paper"]), float(r["fitted"]), float(r["held_out"]))
                    for r in rows]


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - maintenance entry point
    import argparse

    from .calibration_doc import write_doc

    parser = argparse.ArgumentParser(prog="python -m components.calibrate", description=(
        "Paper-table targets vs the component library; --fit refits the cells and factors, --loo measures "
        "held-out accuracy (leave one row out) and regenerates docs/components.md's calibration tables."))
    parser.add_argument("--fit", action="store_true", help="refit logic_cells_28nm.csv and logic_factors_28nm.csv")
    parser.add_argument("--loo", action="store_true", help="leave-one-out over every fitted row (minutes)")
    parser.add_argument("--render", action="store_true", help="only regenerate the doc from the held-out file")
    args = parser.parse_args(argv)
    targets = load_targets()
    if args.fit:
        prior, prior_factors = _priors()
        cells, factors = fit_cells(targets, prior, prior_factors)
        write_cells(cells)
        write_factors(factors)
        load_cells.cache_clear()
        load_factors.cache_clear()
    if args.loo:
        write_held_out(targets)
    if args.loo or args.render:
        write_doc()
    held = {(h.id, h.quantity): h for h in read_held_out()[1]} if HELD_OUT_CSV.exists() else {}
    for t, v in report(targets):
        h = held.get((t.id, t.quantity))
        extra = f" held-out {h.held_out_ratio:6.3f}" if h else ""
        print(f"{t.id:28s} {t.quantity:9s} {t.role:9s} paper {t.value:10.4g} model {v:10.4g} ratio {v / t.value:6.3f}{extra}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
