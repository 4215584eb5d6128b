"""Command-line options shared by the verbs that run whole models (search, compare, sweep).

Numeric options are range-checked as they are parsed: a bad value ends in one line
``error: <args>: --OPTION: expected ...`` and exit status 2, before any work. Kept free of
heavy imports: building the parser must not import the model, pandas, matplotlib or torch
(each verb imports what it needs when it runs).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Any, Callable, NoReturn

from mapper.arch import NEST_ANALYSES
from workloads.yamlio import InputError, as_float, as_int
from workloads.phases import DEFAULT_DECODE_TOKENS, PHASES

# Option ranges (the workload limits themselves are checked in mapper.limits).
MAX_SEQ_LEN = 2**20          # tokens
MAX_BATCH = 2**16
MAX_JOBS = 256
MAX_EVALUATIONS = 10**9


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line ``error: <args>: ...`` with exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"error: <args>: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def int_in(option: str, minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse type: an integer in [minimum, maximum]."""
    def parse(text: str) -> int:
        try:
            return as_int(text, "<args>", option, minimum=minimum, maximum=maximum)
        except InputError as exc:
            raise argparse.ArgumentTypeError(exc.expected) from None
    return parse


def positive_float(option: str) -> Callable[[str], float]:
    """An argparse type: a finite number > 0."""
    def parse(text: str) -> float:
        try:
            value = as_float(text, "<args>", option, minimum=0.0)
        except InputError as exc:
            raise argparse.ArgumentTypeError(exc.expected) from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
        return value
    return parse


def add_plugin_argument(p: argparse.ArgumentParser) -> None:
    """``--allow-plugins``: the explicit opt-in to spec-named Python estimator plug-ins."""
    p.add_argument("--allow-plugins", action="store_true",
                   help="let the spec run the Python estimator plug-ins it names (same as BITLOOP_ALLOW_PLUGINS=1); "
                        "only for specs you trust")


def add_phase_argument(p: argparse.ArgumentParser, many: bool = False) -> None:
    """``--phase``: prefill | decode | generate (one, or several with ``many``)."""
    help_text = ("prefill, decode (one token, KV cache of --kv-len) or generate (prefill + --decode-tokens decode "
                 "steps with a growing KV cache)")
    if many:
        p.add_argument("--phase", nargs="+", choices=list(PHASES), default=["prefill"], help=help_text + "; one or more")
    else:
        p.add_argument("--phase", choices=list(PHASES), default="prefill", help=help_text)

DEFAULT_PARETO = ("energy_pJ", "cycles")   # metrics a sweep's Pareto front minimizes by default


def add_run_arguments(p: argparse.ArgumentParser, jobs_help: str = "worker processes") -> None:
    """Workload shape, statistics and search-budget options."""
    p.add_argument("--seq-len", type=int_in("--seq-len", 1, MAX_SEQ_LEN), default=256, help="context length (tokens)")
    p.add_argument("--batch", type=int_in("--batch", 1, MAX_BATCH), default=1)
    p.add_argument("--kv-len", type=int_in("--kv-len", 1, MAX_SEQ_LEN), default=None,
                   help="KV-cache length for decode (default: seq-len)")
    p.add_argument("--decode-tokens", type=int_in("--decode-tokens", 1, MAX_SEQ_LEN), default=DEFAULT_DECODE_TOKENS,
                   help="decode steps of the generate phase (default %(default)s)")
    p.add_argument("--lm-head", action="store_true", help="include a language model's LM head (last position)")
    p.add_argument("--layers", help="run only some layers: op kinds (linear, conv, dwconv, matmul/attention) and/or "
                                    "name patterns, comma-separated; '!' excludes, e.g. 'conv,linear,!classifier'")
    p.add_argument("--weights", help="tensor statistics: a checkpoint (HF folder, .safetensors, .onnx, .gguf, .pth, .h5, "
                                     "CTranslate2 model.bin) or 'minilm' for its own tensors; 'synthetic[:PROFILE]' for "
                                     "the stated synthetic profile (default: the bundled measured profiles, by layer role)")
    p.add_argument("--objective", default="edp", help="mapping objective: edp | energy | delay | weighted, e.g. energy=1,delay=1e3")
    p.add_argument("--jobs", type=int_in("--jobs", 1, MAX_JOBS), default=max(1, min(2, os.cpu_count() or 1)), help=jobs_help)
    p.add_argument("--seed", type=int_in("--seed", 0, 2**32 - 1), default=0)
    p.add_argument("--max-evaluations", type=int_in("--max-evaluations", 1, MAX_EVALUATIONS), default=None,
                   help="evaluation budget per layer search")
    p.add_argument("--time-limit", type=positive_float("--time-limit"), default=None, help="seconds per layer search")
    p.add_argument("--perfect", action="store_true",
                   help="exact factors only (default: also pad a dimension by <= 12.5%% to factors that fit the fanout, "
                        "as Timeloop's imperfect factorization)")
    p.add_argument("--cache", help="result cache file (default .bitloop_cache/results.sqlite or $BITLOOP_CACHE_DIR)")
    add_nest_analysis_argument(p)
    add_plugin_argument(p)


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
    if args.perfect:
        options["imperfect"] = False
    return options


def workload_options_from(args: argparse.Namespace) -> dict[str, Any]:
    """Workload-shape keyword arguments of run_model / compare / sweep from the parsed options."""
    return {"seq_len": args.seq_len, "batch": args.batch, "kv_len": args.kv_len, "decode_tokens": args.decode_tokens,
            "lm_head": args.lm_head, "layers": args.layers}


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
        if not math.isfinite(weights[name.strip()]) or weights[name.strip()] < 0:
            raise InputError("<args>", "--objective", f"expected a finite weight >= 0, got {part!r}")
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
    add_phase_argument(p)
    add_run_arguments(p, jobs_help="worker processes (or Dask workers with --dask local)")
    p.add_argument("--dask", metavar="ADDRESS", help="run points on Dask: 'local' (LocalCluster) or tcp://HOST:PORT")
    p.add_argument("--out", help="output folder")


def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    """Options of the ``compare`` verb."""
    p.add_argument("--specs", nargs="+", required=True, help="spec YAMLs or bundled names; the first is the baseline")
    p.add_argument("--model", action="extend", nargs="+", required=True,
                   help="built-in model(s) or config.json (several: --model A B or repeat --model)")
    add_phase_argument(p, many=True)
    add_run_arguments(p, jobs_help="worker processes per run")
    p.add_argument("--normalize", choices=["none", "area", "power"], default="none",
                   help="scale each spec's compute array to the baseline's array area or peak power (iso-area / "
                        "iso-power; docs/user_guide.md)")
    p.add_argument("--out", help="output folder for compare.json, compare.csv, compare.png")
