"""``python -m mapper search --arch A --problem P ...``: timeloop-mapper on one layer.

Reads Timeloop's inputs (:mod:`mapper.timeloop_inputs`), searches with bitloop's mapper
(:func:`mapper.search.search`) and writes what timeloop-mapper writes (:mod:`mapper.timeloop_out`).
The architecture is read as timeloopfe flattens it (``spatial_dummies=True``), so level names,
constraints and the written mapping are Timeloop's.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass, field

from mapper.arch import Arch, arch_from_dict
from mapper.constraints import Constraints, constraints_from_parts
from mapper.energy_sources import PricedArch, clock_MHz, price_arch
from mapper.ert import ert_from_dict
from mapper.timeloop_inputs import MapperOptions, TimeloopInputs, gather, mapper_options
from workloads.problem import Problem, problem_from_dict


@dataclass
class LayerInputs:
    """Everything one timeloop-mapper run needs, read and checked."""

    arch: Arch
    problem: Problem
    constraints: Constraints
    priced: PricedArch
    options: MapperOptions
    clock_MHz: float | None
    warnings: list[str] = field(default_factory=list)


def read_layer_inputs(flagged: dict[str, str | None], positional: list[str] | tuple[str, ...] = ()) -> LayerInputs:
    """Read the sections from the named files (``flagged``: arch, problem, constraints, mapper, ert, art)."""
    inputs = gather(flagged, list(positional))
    arch_data, arch_src = inputs.require("arch")
    arch = arch_from_dict({"architecture": arch_data}, arch_src, spatial_dummies=True)
    problem_data, problem_src = inputs.require("problem")
    problem = problem_from_dict({"problem": problem_data}, problem_src)
    constraints = _constraints(inputs, arch, problem)
    ert_section = inputs.get("ERT")
    ert = None
    if ert_section is not None:
        art_section = inputs.get("ART")
        ert = ert_from_dict({"ERT": ert_section[0]}, ert_section[1], {"ART": art_section[0]} if art_section else None)
    mapper_section = inputs.get("mapper")
    options = mapper_options(*mapper_section) if mapper_section else MapperOptions()
    warnings = list(constraints.ignored)
    compound = inputs.get("compound_components")
    if ert is None and compound and isinstance(compound[0], dict) and compound[0].get("classes"):
        warnings.append(f"{compound[1]}: compound_components: not used; bitloop's component library prices the "
                        f"arch's classes (give --ert to use Accelergy's numbers)")
    if options.ignored:
        where = mapper_section[1] if mapper_section else "<mapper>"
        warnings.append(f"{where}: mapper: keys ignored by bitloop's search: {'; '.join(options.ignored)}")
    return LayerInputs(arch, problem, constraints, price_arch(arch, ert), options, clock_MHz(arch.compute.attributes), warnings)


def _constraints(inputs: TimeloopInputs, arch: Arch, problem: Problem) -> Constraints:
    """Constraints on the arch's nodes, then every constraint section (arch and mapspace), applied together."""
    parts = [(list(arch.constraints), arch.source)] if arch.constraints else []
    return constraints_from_parts(parts + inputs.constraint_sections(), arch, problem)


def search_layer(args: argparse.Namespace) -> int:
    """The CLI verb: search, print a summary, write <prefix>.map.yaml / .map.txt / .stats.txt."""
    from mapper.cli_options import parse_objective, search_options_from
    from mapper.search import search
    from mapper.summary import format_summary
    from mapper.timeloop_out import write_mapper_outputs

    layer = read_layer_inputs({k: getattr(args, k) for k in ("arch", "problem", "constraints", "mapper", "ert", "art")},
                              args.inputs)
    for line in layer.warnings:
        print(f"warning: {line}", file=sys.stderr)
    opts = layer.options
    objective = parse_objective(args.objective) if args.objective else opts.objective
    settings = {**opts.search, **search_options_from(args)}
    for note in opts.notes:
        print(f"note: {note}", file=sys.stderr)
    arch = dataclasses.replace(layer.arch, nest_analysis=args.nest_analysis) if args.nest_analysis else layer.arch
    result = search(layer.problem, arch, layer.constraints, ert=layer.priced.ert, objective=objective,
                    clock_MHz=layer.clock_MHz, **settings)
    evaluation = result.evaluation.to_dict()
    evaluation["energy_sources"] = layer.priced.sources
    paths = write_mapper_outputs(args.out or ".", opts.out_prefix, evaluation, layer.arch, result.problem,
                                 result.mapping, layer.priced.ert, layer.priced.sources)
    how = "exhaustive (provably optimal)" if result.exhaustive else "guided"
    objectives = ", ".join(f"{v:.6g}" for v in result.objectives)
    print(format_summary(evaluation, f"{layer.problem.name} on {layer.arch.source}"))
    print("\n".join(layer.priced.summary_lines()))
    pruned = f", {result.pruned} ruled out by their lower bound" if result.pruned else ""
    print(f"Search: {how}, {result.evaluated} mappings evaluated ({result.valid} valid){pruned} in {result.seconds:.1f} s; "
          f"best {objective if isinstance(objective, str) else ' then '.join(objective)} = {objectives}")
    print(f"wrote {paths['map_yaml']}, {paths['map_txt']}, {paths['stats']}")
    return 0
