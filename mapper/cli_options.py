"""Command-line options shared by the verbs that run whole models (search, compare, sweep)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from workloads.yamlio import InputError
from workloads.zoo import DEFAULT_DECODE_TOKENS, PHASES


def add_phase_argument(p: argparse.ArgumentParser, many: bool = False) -> None:
    """``--phase``: prefill | decode | generate (one, or several with ``many``)."""
    help_text = ("prefill, decode (one token, KV cache of --kv-len) or generate (prefill + --decode-tokens decode "
                 "steps with a growing KV cache)")
    if many:
        p.add_argument("--phase", nargs="+", choices=list(PHASES), default=["prefill"], help=help_text + "; one or more")
    else:
        p.add_argument("--phase", choices=list(PHASES), default="prefill", help=help_text)


def add_run_arguments(p: argparse.ArgumentParser, jobs_help: str = "worker processes") -> None:
    """Workload shape, statistics and search-budget options."""
    p.add_argument("--seq-len", type=int, default=256, help="context length (tokens)")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--kv-len", type=int, default=None, help="KV-cache length for decode (default: seq-len)")
    p.add_argument("--decode-tokens", type=int, default=DEFAULT_DECODE_TOKENS,
                   help="decode steps of the generate phase (default %(default)s)")
    p.add_argument("--lm-head", action="store_true", help="include a language model's LM head (last position)")
    p.add_argument("--layers", help="run only some layers: op kinds (linear, conv, dwconv, matmul/attention) and/or "
                                    "name patterns, comma-separated; '!' excludes, e.g. 'conv,linear,!classifier'")
    p.add_argument("--weights", help="checkpoint (safetensors file, HF folder) or 'minilm' for measured statistics "
                                     "(default: the spec's synthetic profile)")
    p.add_argument("--objective", default="edp", help="mapping objective: edp | energy | delay | weighted, e.g. energy=1,delay=1e3")
    p.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)), help=jobs_help)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-evaluations", type=int, default=None, help="evaluation budget per layer search")
    p.add_argument("--time-limit", type=float, default=None, help="seconds per layer search")
    p.add_argument("--perfect", action="store_true",
                   help="exact factors only (default: also pad a dimension by <= 12.5%% to factors that fit the fanout, "
                        "as Timeloop's imperfect factorization)")
    p.add_argument("--cache", help="result cache file (default .bitloop_cache/results.sqlite or $BITLOOP_CACHE_DIR)")


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
    return weights
