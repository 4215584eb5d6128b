"""Command-line entry: ``python -m mapper <verb> ...``.

User mistakes (:class:`InputError`) print one line ``error: FILE: KEY: expected ...`` and
exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Sequence

from workloads.yamlio import InputError, write_atomic


def _cmd_model(args: argparse.Namespace) -> int:
    from mapper.arch import load_arch
    from mapper.ert import load_ert
    from mapper.mapping import load_mapping
    from mapper.model import evaluate
    from mapper.summary import format_summary
    from workloads.problem import load_problem

    arch = load_arch(args.arch)
    problem = load_problem(args.problem)
    mapping = load_mapping(args.mapping, arch, problem)
    ert = load_ert(args.ert, args.art) if args.ert else None
    result = evaluate(problem, arch, mapping, ert=ert, source=str(args.mapping)).to_dict()
    if ert is None:
        result["note"] = "no ERT given: energies are 0 pJ (pass --ert)"
    text = json.dumps(result, indent=2)
    if args.out:
        write_atomic(Path(args.out) / "model.json", text + "\n")
        write_atomic(Path(args.out) / "model.summary.txt", format_summary(result, f"{problem.name} on {args.arch}") + "\n")
    print(text if args.json else format_summary(result, f"{problem.name} on {args.arch}"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mapper", description="bitloop: cost model and mapper for bit-level DNN accelerators")
    verbs = parser.add_subparsers(dest="verb", required=True)

    model = verbs.add_parser("model", help="evaluate one mapping (Timeloop model)")
    model.add_argument("--arch", required=True, help="Timeloop architecture YAML (v0.3 or v0.4)")
    model.add_argument("--problem", required=True, help="Timeloop problem YAML")
    model.add_argument("--mapping", required=True, help="Timeloop mapping YAML")
    model.add_argument("--ert", help="Accelergy ERT.yaml (energy per action, pJ)")
    model.add_argument("--art", help="Accelergy ART.yaml (area per component, um^2)")
    model.add_argument("--out", help="output folder for model.json and model.summary.txt")
    model.add_argument("--json", action="store_true", help="print the JSON instead of the summary")
    model.set_defaults(handler=_cmd_model)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
