"""timeloop-mapper's inputs: YAML files holding top-level sections, and mapper.yaml's options.

Timeloop reads any number of YAML files and merges their top-level sections
(``architecture``, ``problem``, ``mapper``, ``architecture_constraints`` / ``mapspace_constraints``
/ ``constraints``, ``ERT``, ``ART``, ...). The same file may therefore serve several roles
(``--arch f.yaml --problem f.yaml``, or just ``f.yaml``). :func:`gather` collects the sections;
:func:`mapper_options` maps the ``mapper`` section onto bitloop's search
(``src/applications/mapper/mapper.cpp`` ``Mapper::Mapper`` reads the same keys) and lists the
keys bitloop does not use.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mapper.constraints import CONSTRAINT_SECTIONS
from workloads.yamlio import InputError, as_int, load_yaml, normalize_keys

# flag -> the section a file given to it must hold (``arch`` is Timeloop's older spelling).
FLAG_SECTIONS = {"arch": ("architecture", "arch"), "problem": ("problem",), "mapper": ("mapper",),
                 "constraints": CONSTRAINT_SECTIONS, "ert": ("ERT",), "art": ("ART",)}
METRICS = ("energy", "delay", "edp")
# Timeloop's guided-search size per round: bitloop's guided search evaluates `mutants` candidates
# per round (mapper/search.py), so a victory condition of N stale mappings is ceil(N / MUTANTS) rounds.
MUTANTS = 2048


@dataclass
class TimeloopInputs:
    """Top-level sections by name, each with the file it came from; constraint sections are
    kept apart and all apply (several files may each hold some)."""

    sections: dict[str, tuple[Any, str]] = field(default_factory=dict)
    constraints: list[tuple[Any, str]] = field(default_factory=list)

    def get(self, *names: str) -> tuple[Any, str] | None:
        """The first of ``names`` present, as (data, source file)."""
        for name in names:
            if name in self.sections:
                return self.sections[name]
        return None

    def require(self, flag: str) -> tuple[Any, str]:
        found = self.get(*FLAG_SECTIONS[flag])
        if found is None:
            raise InputError("<args>", f"--{flag}", f"no input file holds a '{FLAG_SECTIONS[flag][0]}' section")
        return found

    def constraint_sections(self) -> list[tuple[Any, str]]:
        """Every constraint section present (Timeloop applies arch and mapspace constraints together)."""
        return list(self.constraints)


def gather(flagged: dict[str, str | None], positional: list[str]) -> TimeloopInputs:
    """Read every named file once and collect its sections; each flag's file must hold its section.

    A file given to ``--constraints`` may also be a bare list of constraints.
    """
    inputs = TimeloopInputs()
    loaded: dict[Path, Any] = {}
    files = [(flag, p) for flag, p in flagged.items() if p] + [(None, p) for p in positional]
    for flag, path in files:
        key = Path(path).resolve()
        if key not in loaded:
            data = load_yaml(path)
            if flag == "constraints" and isinstance(data, list):
                data = {"constraints": data}
            if not isinstance(data, dict):
                raise InputError(path, "", "expected a YAML mapping of Timeloop sections (architecture, problem, mapper, ...)")
            loaded[key] = data
            for name, value in data.items():
                if name in CONSTRAINT_SECTIONS:
                    inputs.constraints.append(({name: value}, str(path)))
                    continue
                other = inputs.sections.get(name)
                if other is not None and other[1] != str(path) and other[0] != value:
                    raise InputError(path, name, f"section also given, differently, in {other[1]}")
                inputs.sections[name] = (value, str(path))
        if flag is not None and not any(n in loaded[key] for n in FLAG_SECTIONS[flag]):
            raise InputError(path, FLAG_SECTIONS[flag][0], f"missing required key (the file given to --{flag})")
    return inputs


@dataclass
class MapperOptions:
    """bitloop search settings read from a Timeloop ``mapper`` section.

    Attributes:
        objective: a metric or a lexicographic list of metrics (Timeloop's optimization_metrics).
        search: keyword arguments for :func:`mapper.search.search` (mode, patience, max_evaluations).
        out_prefix: output file prefix (Timeloop's ``out_prefix``, default ``timeloop-mapper``).
        notes: how each read key was mapped; ignored: keys bitloop's search does not use.
    """

    objective: str | tuple[str, ...] = "edp"
    search: dict[str, Any] = field(default_factory=dict)
    out_prefix: str = "timeloop-mapper"
    notes: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


# Keys that only steer Timeloop's logging, threads or its own search bookkeeping.
_IGNORED_KEYS = {
    "timeout": "counts consecutive invalid mappings; bitloop filters invalid candidates in batches "
               "(use --max-evaluations / --time-limit)",
    "max_permutations_per_if_visit": "bitloop enumerates every pruned loop order (exhaustive) or mutates orders (guided)",
    "max_temporal_loops_in_a_mapping": "not supported",
    "filter_revisits": "bitloop never evaluates a candidate twice",
    "penalize_consecutive_bypass_fails": "Timeloop-internal",
    "sync_interval": "threads", "log_interval": "logging", "log_stats": "logging", "log_suboptimal": "logging",
    "log_all": "logging", "log_oaves": "logging", "log_oaves_mappings": "logging", "log_all_mappings": "logging",
    "log_mappings_yaml": "logging", "log_mappings_verbose": "logging", "log_orojenesis_mappings": "logging",
    "live_status": "logging", "diagnostics": "logging", "emit_whoop_nest": "output not written", "heartbeat": "logging",
}
_READ_KEYS = {"version", "out_prefix", "optimization_metric", "optimization_metrics", "algorithm",
              "victory_condition", "search_size", "num_threads"}
_ALGORITHMS = ("exhaustive", "linear_pruned", "random", "random_pruned", "hybrid")


def _metrics(raw: Any, source: str, key: str) -> tuple[str, ...]:
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not all(isinstance(m, str) for m in names):
        raise InputError(source, key, f"expected a metric name or a list of them, got {raw!r}")
    bad = [m for m in names if m not in METRICS]
    if bad:
        raise InputError(source, key, f"unsupported optimization metric {bad[0]!r} (bitloop supports {', '.join(METRICS)})")
    return tuple(names)


def mapper_options(section: Any, source: str) -> MapperOptions:
    """Map a Timeloop ``mapper`` section onto bitloop's search (see the module doc and docs/timeloop_compat.md)."""
    data = normalize_keys(section or {})
    if not isinstance(data, dict):
        raise InputError(source, "mapper", "expected a mapping")
    opts = MapperOptions()
    # Timeloop reads optimization_metric as one name; timeloopfe writes it as a list, and the
    # older key optimization_metrics holds a list. Any non-empty one is the user's choice.
    metrics: tuple[str, ...] = ()
    for key in ("optimization_metrics", "optimization_metric"):
        if data.get(key):
            metrics = _metrics(data[key], source, f"mapper.{key}")
            break
    if metrics:
        opts.objective = metrics[0] if len(metrics) == 1 else metrics
        opts.notes.append(f"objective: {' then '.join(metrics)}" + (" (lexicographic)" if len(metrics) > 1 else ""))
    else:
        opts.notes.append("objective: edp (no optimization metric given; Timeloop's default)")
    if data.get("out_prefix") is not None:
        opts.out_prefix = str(data["out_prefix"])
    algorithm = str(data.get("algorithm", "hybrid"))
    if algorithm not in _ALGORITHMS:
        raise InputError(source, "mapper.algorithm", f"expected one of {', '.join(_ALGORITHMS)}, got {algorithm!r}")
    victory = as_int(data["victory_condition"], source, "mapper.victory_condition", minimum=0) \
        if data.get("victory_condition") is not None else 500   # Timeloop's default
    threads = as_int(data["num_threads"], source, "mapper.num_threads", minimum=1) \
        if data.get("num_threads") is not None else os.cpu_count() or 1
    search_size = as_int(data["search_size"], source, "mapper.search_size", minimum=0) \
        if data.get("search_size") is not None else 0
    if algorithm in ("exhaustive", "linear_pruned") and victory == 0 and search_size == 0:
        opts.search["mode"] = "exhaustive"
        opts.notes.append(f"algorithm {algorithm} with no victory condition: bitloop's exhaustive search of the pruned mapspace")
    else:
        # Timeloop stops a thread after `victory` consecutive non-improving valid mappings; its
        # threads run side by side, so about victory x threads stale mappings in all.
        if victory > 0:
            opts.search["patience"] = max(1, math.ceil(victory * threads / MUTANTS))
        opts.notes.append(f"algorithm {algorithm}: bitloop's auto mode (exhaustive when the pruned mapspace is small, "
                          f"else guided" + (f", stopping after {opts.search['patience']} stale rounds of {MUTANTS} "
                                            f"= victory_condition {victory} x {threads} threads)" if victory else ")"))
    if search_size > 0:
        opts.search["max_evaluations"] = search_size
        opts.notes.append(f"search_size {search_size}: evaluation budget")
    for key in sorted(data):
        if key in _IGNORED_KEYS and data[key] not in (None, False, [], -1, 0) or key == "timeout":
            opts.ignored.append(f"{key} ({_IGNORED_KEYS[key]})")
        elif key not in _READ_KEYS and key not in _IGNORED_KEYS:
            opts.ignored.append(f"{key} (unknown to bitloop)")
    return opts
