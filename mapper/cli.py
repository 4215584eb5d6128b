"""Command-line entry: ``bitloop <verb> ...`` (the same as ``python -m mapper <verb> ...``).

User mistakes (:class:`InputError`) print one line ``error: FILE: KEY: expected ...`` and
exit with status 2; no traceback. ``--allow-plugins`` (or ``BITLOOP_ALLOW_PLUGINS=1``) lets
a spec run the Python estimator plug-ins it names; plug-ins named with ``--estimator`` run
without it. Building the parser imports nothing heavy: each verb's handler imports its modules
when it runs (``model`` never loads pandas, matplotlib or torch).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from mapper.cli_options import (
    Parser, add_compare_arguments, add_nest_analysis_argument, add_phase_argument, add_plugin_argument,
    add_run_arguments, add_sweep_arguments, add_timeloop_input_arguments, parse_objective, search_options_from,
    workload_options_from,
)
from mapper.outdir import OutputDir
from mapper.spec import PLUGINS_ENV
from workloads.provenance import __version__, running_command
from workloads.yamlio import InputError


def _cmd_model(args: argparse.Namespace) -> int:
    from mapper.ert import load_ert
    from mapper.mapping import load_mapping
    from mapper.model import evaluate
    from mapper.summary import format_summary
    from workloads.problem import load_problem

    from mapper.limits import check_arch, check_numbers, check_problem

    out = OutputDir(args.out) if args.out else None
    problem = load_problem(args.problem)
    models, clock, source_lines = None, None, []
    if args.spec:
        from mapper.bitlevel import layer_models
        from mapper.spec import load_spec

        spec = load_spec(args.spec, nest_analysis=args.nest_analysis)
        arch, ert, models, clock = spec.arch, spec.ert, layer_models(spec, None), spec.clock_MHz
        if args.ert:
            ert = load_ert(args.ert, args.art)
    elif args.arch:
        from mapper.arch import load_arch
        from mapper.energy_sources import price_arch

        arch = load_arch(args.arch, spatial_dummies=True)   # the levels Timeloop evaluates
        if args.nest_analysis:
            arch = dataclasses.replace(arch, nest_analysis=args.nest_analysis)
        priced = price_arch(arch, load_ert(args.ert, args.art) if args.ert else None)
        ert, source_lines = priced.ert, priced.summary_lines()
    else:
        raise InputError("<args>", "--arch", "give --arch (with optional --ert) or --spec")
    check_arch(arch, str(args.spec or args.arch))
    check_problem(problem, str(args.problem), arch)
    mapping = load_mapping(args.mapping, arch, problem)
    result = evaluate(problem, arch, mapping, ert=ert, models=models, clock_MHz=clock, source=str(args.mapping)).to_dict()
    check_numbers(result, str(args.mapping), "model")
    if args.arch:
        result["energy_sources"] = priced.sources
    text = json.dumps(result, indent=2, allow_nan=False)
    summary = "\n".join([format_summary(result, f"{problem.name} on {args.spec or args.arch}"), *source_lines])
    if out is not None:
        out.write("model.json", text + "\n")
        out.write("model.summary.txt", summary + "\n")
    print(text if args.json else summary)
    return 0


_LAYER_INPUTS = ("arch", "problem", "constraints", "mapper", "ert", "art", "inputs")


def _cmd_search(args: argparse.Namespace) -> int:
    """Whole model on a spec (--spec/--model), or one layer from Timeloop inputs (--arch/--problem)."""
    layer = [f"--{k}" if k != "inputs" else "YAML inputs" for k in _LAYER_INPUTS if getattr(args, k)]
    if args.spec or args.model:
        if layer:
            raise InputError("<args>", layer[0], "give either --spec and --model (whole model) or Timeloop inputs (one layer)")
        if not (args.spec and args.model):
            raise InputError("<args>", "--model" if args.spec else "--spec", "the whole-model search needs both --spec and --model")
        return _search_model(args)
    if not layer:
        raise InputError("<args>", "--arch", "give --spec and --model (whole model) or --arch and --problem (one layer)")
    from mapper.timeloop_search import search_layer

    return search_layer(args)


def _search_model(args: argparse.Namespace) -> int:
    from mapper.cache import ResultCache
    from mapper.report import OWNED, format_table, write_report
    from mapper.run import run_model
    from mapper.spec import load_spec

    out = OutputDir(args.out, OWNED) if args.out else None     # a bad --out fails before the search
    spec = load_spec(args.spec, nest_analysis=args.nest_analysis)
    report = run_model(
        spec, args.model, phase=args.phase, **workload_options_from(args),
        weights=args.weights, objective=parse_objective(args.objective or "edp"), jobs=args.jobs,
        cache=ResultCache(args.cache) if args.cache else None, search_options=search_options_from(args), progress=True,
    )
    paths = write_report(report, out) if out is not None else None   # written before stdout can fail
    print(format_table(report))
    if paths is not None:
        print(f"wrote {paths['summary']}, {paths['layers_csv']}, mappings/, stats/, {paths['plot'].name}")
    return 0


def _cmd_ert(args: argparse.Namespace) -> int:
    from mapper.spec import load_spec

    out = OutputDir(args.out)
    spec = load_spec(args.spec)
    if args.estimator:
        spec.estimators = [*spec.estimators, *[Path(e) for e in args.estimator]]
        for e in spec.estimators:
            if not Path(e).is_file():
                raise InputError("<args>", "--estimator", f"plug-in file not found: {e}")
    tables = spec.tables
    for path in tables.write(out.path):
        out.keep(path.name)
    print(tables.to_ert_yaml())
    print(f"wrote {Path(args.out) / 'ERT.yaml'}, ART.yaml and ERT_summary.yaml (which estimator priced each primitive)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="bitloop", description="bitloop: cost model and mapper for bit-level DNN accelerators")
    parser.add_argument("--version", action="version", version=f"bitloop {__version__}")
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
    add_nest_analysis_argument(model)
    add_plugin_argument(model)
    model.set_defaults(handler=_cmd_model)

    srch = verbs.add_parser("search", help="map every layer of a model on a spec (--spec/--model), or one layer "
                                           "from Timeloop inputs like timeloop-mapper (--arch/--problem)")
    srch.add_argument("--spec", help="spec YAML (or a bundled spec name, e.g. panacea, sa_ws)")
    srch.add_argument("--model", help="built-in model name (gpt2, opt-1.3b, ...), a config.json path or an .onnx file")
    add_phase_argument(srch)
    add_run_arguments(srch)
    add_timeloop_input_arguments(srch)
    srch.set_defaults(objective=None)   # whole model: edp; one layer: the mapper section's metrics
    srch.add_argument("--out", help="output folder (one layer: default the current folder, as timeloop-mapper)")
    srch.set_defaults(handler=_cmd_search)

    ert = verbs.add_parser("ert", help="write Accelergy ERT.yaml/ART.yaml for a spec's components")
    ert.add_argument("--spec", required=True, help="spec YAML (or a bundled spec name)")
    ert.add_argument("--estimator", action="append", help="extra plug-in estimator (CSV table or .py file); repeatable")
    ert.add_argument("--out", default=".", help="output folder (default: current folder)")
    add_plugin_argument(ert)
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
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    saved = os.environ.get(PLUGINS_ENV)
    if getattr(args, "allow_plugins", False):
        os.environ[PLUGINS_ENV] = "1"     # the flag and the variable are one switch, seen by worker processes too
    try:
        with running_command(["bitloop", *argv]):
            return handler(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # e.g. `... | head`: the reader is gone (search wrote its files first)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141
    finally:
        if saved is None:
            os.environ.pop(PLUGINS_ENV, None)
        else:
            os.environ[PLUGINS_ENV] = saved
