"""Command-line options shared by the verbs that run whole models (search, compare, sweep)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from mapper.arch import NEST_ANALYSES
from workloads.yamlio import InputError


def add_run_arguments(p: argparse.ArgumentParser, jobs_help: str = "worker processes") -> None:
    """Workload shape, statistics and search-budget options."""
    p.add_argument("--seq-len", type=int, default=256, help="context length (tokens)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--kv-len", type=int, default=None, help="KV-cache length for decode (default: seq-len)")
    p.add_argument("--weights", help="tensor statistics: a checkpoint (HF folder, .safetensors, .onnx, .gguf, .pth, .h5, "
                                     "CTranslate2 model.bin) or 'minilm' for its own tensors; 'synthetic[:PROFILE]' for "
                                     "the stated synthetic profile (default: the bundled measured profiles, by layer role)")
    p.add_argument("--objective", default="edp", help="mapping objective: edp | energy | delay | weighted, e.g. energy=1,delay=1e3")
    p.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)), help=jobs_help)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-evaluations", type=int, default=None, help="evaluation budget per layer search")
    p.add_argument("--time-limit", type=float, default=None, help="seconds per layer search")
    p.add_argument("--imperfect", action="store_true",
                   help="also consider padding a dimension (<= 12.5%%) up to factors that fit the fanout")
    p.add_argument("--cache", help="result cache file (default .bitloop_cache/results.sqlite or $BITLOOP_CACHE_DIR)")
    add_nest_analysis_argument(p)


def add_nest_analysis_argument(p: argparse.ArgumentParser) -> None:
    """``--nest-analysis timeloop|exact``: overrides the spec's / arch's counting semantics."""
    p.add_argument("--nest-analysis", choices=NEST_ANALYSES, default=None,
                   help="access-count semantics: timeloop (default; equal to timeloop-model) or exact "
                        "(exact point-set reuse, partial multicast, drain reads); docs/nest_analysis.md")


def search_options_from(args: argparse.Namespace) -> dict[str, Any]:
    """Search settings from the parsed options (only what the user set beyond the defaults)."""
    options: dict[str, Any] = {"seed": args.seed}
    if args.max_evaluations:
        options["max_evaluations"] = args.max_evaluations
    if args.time_limit:
        options["time_limit_s"] = args.time_limit
    if args.imperfect:
        options["imperfect"] = True
    return options


def parse_objective(text: str) -> Any:
    """``edp`` | ``energy`` | ``delay`` | ``energy=1,delay=0.5`` (weighted sum)."""
    if "=" not in text:
        return text
    weights = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise InputError("<args>", "--objective", f"expected NAME=WEIGHT pairs, got {part!r}") from None
    return weights


def add_timeloop_input_arguments(p: argparse.ArgumentParser) -> None:
    """timeloop-mapper's inputs: files by role, or any files holding several top-level sections."""
    p.add_argument("inputs", nargs="*", metavar="YAML",
                   help="Timeloop input files; each may hold several sections (architecture, problem, mapper, "
                        "constraints, ERT, ...)")
    p.add_argument("--arch", help="Timeloop architecture YAML (v0.3 or v0.4)")
    p.add_argument("--problem", help="Timeloop problem YAML")
    p.add_argument("--constraints", help="Timeloop constraints YAML (constraints / architecture_constraints / "
                                         "mapspace_constraints, 'targets:' lists)")
    p.add_argument("--mapper", help="Timeloop mapper YAML (optimization metrics, algorithm, victory condition...)")
    p.add_argument("--ert", help="Accelergy ERT.yaml (default: bitloop's estimators price the arch's classes)")
    p.add_argument("--art", help="Accelergy ART.yaml (area per component, um^2)")
