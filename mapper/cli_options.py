"""Command-line options of the verbs that run whole models (search, compare, sweep).

Kept free of heavy imports: building the parser must not import the model, pandas,
matplotlib or torch (each verb imports what it needs when it runs).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from workloads.yamlio import InputError

DEFAULT_PARETO = ("energy_pJ", "cycles")   # metrics a sweep's Pareto front minimizes by default


def add_run_arguments(p: argparse.ArgumentParser, jobs_help: str = "worker processes") -> None:
    """Workload shape, statistics and search-budget options."""
    p.add_argument("--seq-len", type=int, default=256, help="context length (tokens)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--kv-len", type=int, default=None, help="KV-cache length for decode (default: seq-len)")
    p.add_argument("--weights", help="checkpoint (safetensors file, HF folder) or 'minilm' for measured statistics "
                                     "(default: the spec's synthetic profile)")
    p.add_argument("--objective", default="edp", help="mapping objective: edp | energy | delay | weighted, e.g. energy=1,delay=1e3")
    p.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)), help=jobs_help)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-evaluations", type=int, default=None, help="evaluation budget per layer search")
    p.add_argument("--time-limit", type=float, default=None, help="seconds per layer search")
    p.add_argument("--imperfect", action="store_true",
                   help="also consider padding a dimension (<= 12.5%%) up to factors that fit the fanout")
    p.add_argument("--cache", help="result cache file (default .bitloop_cache/results.sqlite or $BITLOOP_CACHE_DIR)")


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


def add_sweep_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the ``sweep`` verb."""
    p.add_argument("--spec", required=True, help="spec YAML (or a bundled spec name)")
    p.add_argument("--model", required=True, help="built-in model name or a config.json path")
    p.add_argument("--param", action="append", metavar="PATH=V1,V2,...",
                   help="spec path and values, e.g. arch.GLB.depth=4096,8192 or pe.sub_group=4,8,16 (repeatable)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--grid", action="store_true", help="every combination of the values (default)")
    how.add_argument("--zip", action="store_true", help="the i-th values of every --param together")
    p.add_argument("--pareto", default=",".join(DEFAULT_PARETO), help="metrics the Pareto front minimizes (columns)")
    p.add_argument("--phase", choices=["prefill", "decode"], default="prefill")
    add_run_arguments(p, jobs_help="worker processes (or Dask workers with --dask local)")
    p.add_argument("--dask", metavar="ADDRESS", help="run points on Dask: 'local' (LocalCluster) or tcp://HOST:PORT")
    p.add_argument("--out", help="output folder")


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the ``compare`` verb."""
    p.add_argument("--specs", nargs="+", required=True, help="spec YAMLs or bundled names; the first is the baseline")
    p.add_argument("--model", action="extend", nargs="+", required=True,
                   help="built-in model(s) or config.json (several: --model A B or repeat --model)")
    p.add_argument("--phase", nargs="+", choices=["prefill", "decode"], default=["prefill"], help="one or more phases")
    add_run_arguments(p, jobs_help="worker processes per run")
    p.add_argument("--out", help="output folder for compare.json, compare.csv, compare.png")
