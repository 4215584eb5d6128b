"""Command-line entry: ``python -m mapper <verb> ...``.

User mistakes (:class:`InputError`) print one line ``error: FILE: KEY: expected ...`` and
exit with status 2; no traceback. Building the parser imports nothing heavy: each verb's
handler imports its modules when it runs (``model`` never loads pandas, matplotlib or torch).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Callable, Sequence

from mapper.cli_options import (
    add_compare_arguments, add_run_arguments, add_sweep_arguments, parse_objective, search_options_from,
)
from workloads.yamlio import InputError, write_atomic


def _cmd_model(args: argparse.Namespace) -> int:
    from mapper.arch import load_arch
    from mapper.ert import load_ert
    from mapper.mapping import load_mapping
    from mapper.model import evaluate
    from mapper.summary import format_summary
    from workloads.problem import load_problem

    problem = load_problem(args.problem)
    models, clock = None, None
    if args.spec:
        from mapper.bitlevel import layer_models
        from mapper.spec import load_spec

        spec = load_spec(args.spec)
        arch, ert, models, clock = spec.arch, spec.ert, layer_models(spec, None), spec.clock_MHz
        if args.ert:
            ert = load_ert(args.ert, args.art)
    elif args.arch:
        arch = load_arch(args.arch)
        ert = load_ert(args.ert, args.art) if args.ert else None
    else:
        raise InputError("<args>", "--arch", "give --arch (with optional --ert) or --spec")
    mapping = load_mapping(args.mapping, arch, problem)
    result = evaluate(problem, arch, mapping, ert=ert, models=models, clock_MHz=clock, source=str(args.mapping)).to_dict()
    if ert is None:
        result["note"] = "no ERT given: energies are 0 pJ (pass --ert or --spec)"
    text = json.dumps(result, indent=2)
    if args.out:
        write_atomic(Path(args.out) / "model.json", text + "\n")
        write_atomic(Path(args.out) / "model.summary.txt", format_summary(result, f"{problem.name} on {args.spec or args.arch}") + "\n")
    print(text if args.json else format_summary(result, f"{problem.name} on {args.spec or args.arch}"))
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from mapper.cache import ResultCache
    from mapper.report import format_table, write_report
    from mapper.run import run_model
    from mapper.spec import load_spec

    spec = load_spec(args.spec)
    report = run_model(
        spec, args.model, phase=args.phase, seq_len=args.seq_len, batch=args.batch, kv_len=args.kv_len,
        weights=args.weights, objective=parse_objective(args.objective), jobs=args.jobs,
        cache=ResultCache(args.cache) if args.cache else None, search_options=search_options_from(args), progress=True,
    )
    print(format_table(report))
    if args.out:
        paths = write_report(report, args.out)
        print(f"wrote {paths['summary']}, {paths['layers_csv']}, mappings/, stats/, {paths['plot'].name}")
    return 0


def _cmd_ert(args: argparse.Namespace) -> int:
    from mapper.spec import load_spec

    spec = load_spec(args.spec)
    if args.estimator:
        spec.estimators = [*spec.estimators, *[Path(e) for e in args.estimator]]
        for e in spec.estimators:
            if not Path(e).exists():
                raise InputError("<args>", "--estimator", f"plug-in file not found: {e}")
    tables = spec.tables
    tables.write(args.out)
    print(tables.to_ert_yaml())
    print(f"wrote {Path(args.out) / 'ERT.yaml'}, ART.yaml and ERT_summary.yaml (which estimator priced each primitive)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mapper", description="bitloop: cost model and mapper for bit-level DNN accelerators")
    verbs = parser.add_subparsers(dest="verb", required=True)

    model = verbs.add_parser("model", help="evaluate one mapping (Timeloop model)")
    model.add_argument("--arch", help="Timeloop architecture YAML (v0.3 or v0.4)")
    model.add_argument("--spec", help="spec YAML instead of --arch: its arch, component energies and work models")
    model.add_argument("--problem", required=True, help="Timeloop problem YAML")
    model.add_argument("--mapping", required=True, help="Timeloop mapping YAML")
    model.add_argument("--ert", help="Accelergy ERT.yaml (energy per action, pJ)")
    model.add_argument("--art", help="Accelergy ART.yaml (area per component, um^2)")
    model.add_argument("--out", help="output folder for model.json and model.summary.txt")
    model.add_argument("--json", action="store_true", help="print the JSON instead of the summary")
    model.set_defaults(handler=_cmd_model)

    srch = verbs.add_parser("search", help="map and evaluate every layer of a model on a spec")
    srch.add_argument("--spec", required=True, help="spec YAML (or a bundled spec name, e.g. panacea, sa_ws)")
    srch.add_argument("--model", required=True, help="built-in model name (gpt2, opt-1.3b, ...) or a config.json path")
    srch.add_argument("--phase", choices=["prefill", "decode"], default="prefill")
    add_run_arguments(srch)
    srch.add_argument("--out", help="output folder")
    srch.set_defaults(handler=_cmd_search)

    ert = verbs.add_parser("ert", help="write Accelergy ERT.yaml/ART.yaml for a spec's components")
    ert.add_argument("--spec", required=True, help="spec YAML (or a bundled spec name)")
    ert.add_argument("--estimator", action="append", help="extra plug-in estimator (CSV table or .py file); repeatable")
    ert.add_argument("--out", default=".", help="output folder (default: current folder)")
    ert.set_defaults(handler=_cmd_ert)

    sweep = verbs.add_parser("sweep", help="sensitivity study: re-derive, re-map and evaluate a model over spec parameters")
    add_sweep_arguments(sweep)
    sweep.set_defaults(handler=_handler_in("mapper.sweep", "_cmd_sweep"))

    compare = verbs.add_parser("compare", help="run several specs on the same workloads; speedup and energy vs the first")
    add_compare_arguments(compare)
    compare.set_defaults(handler=_handler_in("mapper.compare", "_cmd_compare"))
    return parser


def _handler_in(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """A verb handler that lives in ``module`` (imported only when the verb runs)."""
    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), name)(args)
    return run


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
