"""Benchmark glue: read a single-file timeloop-mapper case (../shared/mapper_cases/*) into bitloop types.

A case folder holds one YAML with ``architecture``, ``problem`` and constraint sections as the
Timeloop front end dumps them, plus Accelergy's ``ERT.yaml``. The front end numbers instances
``[1..N]``; bitloop's readers take Timeloop's ``[0..N-1]``, so names are rewritten here (this glue
stays in benchmarks/; the CLI that reads such files is another module's job).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mapper.arch import Arch, arch_from_dict
from mapper.constraints import Constraints, constraints_from_list
from mapper.ert import EnergyTable, ert_from_dict
from workloads.problem import Problem, problem_from_dict
from workloads.yamlio import load_yaml

CASES_DIR = Path(__file__).resolve().parents[2] / "shared" / "mapper_cases"
if not CASES_DIR.exists():
    CASES_DIR = Path("/work/shared/mapper_cases")

_ONE_BASED = re.compile(r"\[1\.\.(\d+)\]")


def _zero_based(data: Any) -> Any:
    """Rewrite ``name[1..N]`` as ``name[0..N-1]`` everywhere."""
    if isinstance(data, dict):
        return {k: _zero_based(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_zero_based(v) for v in data]
    if isinstance(data, str):
        return _ONE_BASED.sub(lambda m: f"[0..{int(m.group(1)) - 1}]", data)
    return data


def _plain_names(data: Any) -> Any:
    """ERT/ART table names without instance ranges (bitloop matches by the last name component)."""
    if isinstance(data, dict):
        return {k: (re.sub(r"\[\d+\.\.\d+\]", "", v) if k == "name" and isinstance(v, str) else _plain_names(v))
                for k, v in data.items()}
    if isinstance(data, list):
        return [_plain_names(v) for v in data]
    return data


def load_case(folder: str | Path) -> tuple[Problem, Arch, Constraints, EnergyTable]:
    """(problem, arch, constraints, ERT) of one mapper case folder."""
    folder = Path(folder)
    main = next(folder.glob("mapper_*.yaml"))
    data = _zero_based(load_yaml(main))
    arch = arch_from_dict({"architecture": data["architecture"]}, main)
    problem = problem_from_dict({"problem": data["problem"]}, main)
    entries: list[Any] = []
    for section in ("architecture_constraints", "mapspace_constraints", "constraints"):
        block = data.get(section) or {}
        entries += (block.get("targets") if isinstance(block, dict) else block) or []
    constraints = constraints_from_list(entries, arch, problem, main)
    ert = ert_from_dict(_plain_names(load_yaml(folder / "ERT.yaml")), folder / "ERT.yaml")
    return problem, arch, constraints, ert
