"""Mutation testing of the counting core, the pricing and the statistics with mutmut (not CI).

Each group's modules are mutated by mutmut (PyPI ``mutmut``; ``pip install mutmut==3.8.1``) in
a copy of the checkout outside the repository, and every mutant runs only the group's test
files (mutmut narrows them further to the tests that call the mutated function). A survivor
is either listed as equivalent in benchmarks/mutation_equivalents.yaml (matched on its diff,
with the reason it cannot change a result) or counted against the kill rate.

    python benchmarks/mutation.py                  # all groups (hours on 2 shared cores)
    python benchmarks/mutation.py --group nest     # one group; the others keep their results
    python benchmarks/mutation.py --group stats --modules sparsity_models/stats/terms.py --time-box 30
                                                   # a subset of a group, stopped after 30 min
    python benchmarks/mutation.py --render         # docs/testing.md from the results file only

Results go to benchmarks/mutation_results.json and docs/testing.md (tests/test_mutation_doc.py
checks that the doc is what the results file renders). A run with ``--modules`` replaces the
results of those files only. Kill rate = (killed + timed out) / (mutants - equivalent survivors
- mutants a time-boxed run did not reach); "no tests" mutants (no selected test calls the
function) count as not killed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "mutation_results.json"
EQUIVALENTS = ROOT / "benchmarks" / "mutation_equivalents.yaml"
DOC = ROOT / "docs" / "testing.md"
PLUGIN = ROOT / "benchmarks" / "mutation_plugin.py"   # fresh caches per test, memoized oracles
PACKAGES = ("mapper", "components", "sparsity_models", "workloads", "specs")
NEST_TESTS = ["tests/test_nest_timeloop.py", "tests/test_nest_oracle.py", "tests/test_nest_contracts.py",
              "tests/test_timeloop_conformance.py", "tests/test_hand_examples.py", "tests/test_model_properties.py",
              "tests/test_model_energy.py", "tests/test_model_guards.py",
              "tests/test_model_batch.py"]
GROUPS: dict[str, dict[str, Any]] = {
    "nest": {"package": "mapper", "tests": NEST_TESTS,
             "modules": ["mapper/nest.py", "mapper/nest_timeloop.py", "mapper/nest_mesh.py", "mapper/nest_exact.py",
                         "mapper/model.py"]},
    "stats": {"package": "sparsity_models", "modules": ["sparsity_models/stats/*.py"],
              "tests": ["tests/sparsity_models/test_bitcols_hand.py", "tests/sparsity_models/test_bbs_properties.py",
                        "tests/sparsity_models/test_panacea_hand.py", "tests/sparsity_models/test_sbq.py",
                        "tests/sparsity_models/test_workmodels.py"]},
    "estimators": {"package": "components", "modules": ["components/estimators/*.py"],
                   "tests": ["tests/components/test_components_estimators.py",
                             "tests/components/test_components_sram_fit.py",
                             "tests/components/test_components_plugins.py",
                             "tests/components/test_components_lanes.py",
                             "tests/components/test_components_paper_tables.py"],
                   # the two full refits (minutes each without the design-column cache) are left out
                   "deselect": ["tests/components/test_components_paper_tables.py::test_stage_two_leaves_the_shared_cells_alone",
                                "tests/components/test_components_paper_tables.py::"
                                "test_shipped_cell_costs_reproduce_from_the_calibration"]},
}
KILLED = {"killed", "timeout"}
NOT_RUN = "not checked"   # mutmut's status of a mutant it has not tested (a time-boxed run stopped first)
LISTED = ("mapper/nest", "mapper/model")   # modules whose every survivor is shown and argued (issue 16)

# Runs in the copy: every mutant's status and, for the ones not killed, its diff.
_COLLECT = """
import json
from mutmut.__main__ import SourceFileMutationData, status_by_exit_code, walk_mutatable_files
from mutmut.mutation.diff_apply import get_diff_for_mutant
out = {}
for path in walk_mutatable_files():
    m = SourceFileMutationData(path=path)
    m.load()
    for name, code in m.exit_code_by_key.items():
        status = status_by_exit_code[code]
        out[name] = {"file": str(path), "status": status,
                     "diff": "" if status in ("killed", "timeout") else get_diff_for_mutant(name, path=path)}
print(json.dumps(out))
"""


def _workdir() -> Path:
    return Path(os.environ.get("BITLOOP_MUTATION_DIR", "/tmp/bitloop-mutation"))


def _tree_files() -> list[str]:
    """The checkout's files as git sees them (tracked and new, ignored ones left out)."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout.split("\n")
    return [f for f in out if f and (ROOT / f).is_file()]


def _setup_cfg(group: dict[str, Any], modules: list[str]) -> str:
    also = [p for p in PACKAGES if p != group["package"]]
    lines = ["[mutmut]", f"source_paths={group['package']}", "only_mutate=", *[f"    {m}" for m in modules],
             "also_copy=", *[f"    {p}" for p in also], f"    {PLUGIN.name}",
             "pytest_add_cli_args_test_selection=", *[f"    {t}" for t in group["tests"]],
             *[f"    --deselect={t}" for t in group.get("deselect", [])],
             "pytest_add_cli_args=", "    -p", "    no:cacheprovider", "    -p", f"    {PLUGIN.stem}"]
    return "\n".join(lines) + "\n"


def shared_dir() -> str:
    """../shared (or $BITLOOP_SHARED) for the copy, which does not sit beside it."""
    if os.environ.get("BITLOOP_SHARED"):
        return os.environ["BITLOOP_SHARED"]
    return str(next(p / "shared" for p in ROOT.parents if (p / "shared").is_dir()))


def run_group(name: str, children: int, modules: list[str] | None = None, time_box: float | None = None) -> dict[str, Any]:
    """Copy the tree, run mutmut on one group (or on ``modules``, a subset of it), return per-mutant
    statuses and diffs. After ``time_box`` minutes mutmut is stopped: the mutants it had not
    tested yet keep mutmut's status "not checked"."""
    group = GROUPS[name]
    modules = modules or group["modules"]
    copy = _workdir() / name
    if copy.exists():
        shutil.rmtree(copy)
    copy.mkdir(parents=True)
    for f in _tree_files():
        (copy / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, copy / f)
    (copy / "setup.cfg").write_text(_setup_cfg(group, modules))
    shutil.copy2(PLUGIN, copy / PLUGIN.name)
    env = {**os.environ, "BITLOOP_SHARED": shared_dir(), "BITLOOP_CACHE_DIR": str(copy / ".cache"),
           "PYTHONPATH": ""}
    start = time.perf_counter()
    stopped = False
    with open(copy / "mutmut.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mutmut", "run", "--max-children", str(children)], cwd=copy,
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait(timeout=None if time_box is None else 60 * time_box)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)      # mutmut and the test processes it forked
            proc.wait()
            code, stopped = 0, True
    if code:
        raise SystemExit(f"error: mutmut failed on group {name} (exit {code}); see {copy / 'mutmut.log'}")
    seconds = time.perf_counter() - start
    out = subprocess.run([sys.executable, "-c", _COLLECT], cwd=copy, env=env, check=True, capture_output=True, text=True)
    mutants = {k: {**m, "diff": changed_part(m["diff"])} for k, m in json.loads(out.stdout).items()}
    run = {"seconds": round(seconds), "children": children, "modules": modules, "tests": group["tests"],
           "mutants": mutants}
    if stopped:
        run["time_box_minutes"] = time_box
    return run


def changed_part(diff: str) -> str:
    """A mutant's diff cut to its removed and added lines (what the equivalents match on)."""
    return "\n".join(l for l in diff.splitlines() if l[:1] in "-+" and l[:3] not in ("---", "+++"))


def _changed_lines(diff: str) -> tuple[str, str]:
    """The removed and the added lines of a mutant's diff, whitespace collapsed."""
    def norm(prefix: str) -> str:
        lines = [l[1:] for l in diff.splitlines() if l.startswith(prefix) and not l.startswith(prefix * 3)]
        return " ".join(" ".join(lines).split())
    return norm("-"), norm("+")


def load_equivalents() -> list[dict[str, str]]:
    from workloads.yamlio import load_yaml

    return list(load_yaml(EQUIVALENTS)["equivalent"])


def equivalence(module: str, diff: str, equivalents: list[dict[str, str]]) -> dict[str, str] | None:
    before, after = _changed_lines(diff)
    return next((e for e in equivalents if e["module"] == module and " ".join(e["before"].split()) == before
                 and " ".join(e["after"].split()) == after), None)


def module_of(file: str) -> str:
    return file.removesuffix(".py")


def summarize(results: dict[str, Any], equivalents: list[dict[str, str]]) -> dict[str, Any]:
    """Per module: counts by status, equivalent survivors, kill rate; and every survivor."""
    modules: dict[str, dict[str, Any]] = {}
    survivors = []
    for group in results["groups"].values():
        for name, m in sorted(group["mutants"].items()):
            mod = module_of(m["file"])
            row = modules.setdefault(mod, {"mutants": 0, "killed": 0, "timeout": 0, "equivalent": 0, "survived": 0,
                                           "no_tests": 0, "not_run": 0})
            row["mutants"] += 1
            if m["status"] in KILLED:
                row["killed"] += 1
                row["timeout"] += m["status"] == "timeout"
                continue
            if m["status"] == NOT_RUN:
                row["not_run"] += 1
                continue
            eq = equivalence(mod, m["diff"], equivalents)
            before, after = _changed_lines(m["diff"])
            if eq is not None:
                row["equivalent"] += 1
            elif m["status"] == "no tests":
                row["no_tests"] += 1
            else:
                row["survived"] += 1
            survivors.append({"module": mod, "mutant": name, "status": m["status"], "before": before, "after": after,
                              "reason": eq["reason"] if eq else ""})
    for row in modules.values():
        live = row["mutants"] - row["equivalent"] - row["not_run"]
        row["kill_rate"] = row["killed"] / live if live else None     # None: no mutant of the module ran
    return {"modules": modules, "survivors": survivors}


def _expand(patterns: list[str]) -> set[str]:
    """The non-empty source files a list of module globs names."""
    return {str(f.relative_to(ROOT)) for p in patterns for f in ROOT.glob(p) if f.stat().st_size and f.name != "__init__.py"}


def command(name: str, run: dict[str, Any]) -> str:
    """The command line of one run of a group."""
    subset = ["--modules", *run["modules"]] if run["modules"] != GROUPS[name]["modules"] else []
    box = ["--time-box", f"{run['time_box_minutes']:g}"] if run.get("time_box_minutes") else []
    return " ".join(["python benchmarks/mutation.py --group", name, *subset, "--max-children", str(run["children"]), *box])


def runs_of(entry: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The runs (command settings and wall time) behind a group's results, oldest first."""
    if entry is None:
        return []
    return entry.get("runs") or [{k: v for k, v in entry.items() if k != "mutants"}]


def merge(entry: dict[str, Any] | None, run: dict[str, Any]) -> dict[str, Any]:
    """A group's results after ``run``: its mutants replace those of the files it mutated, the
    earlier runs keep the other files'."""
    files = _expand(run["modules"])
    older = [r for r in runs_of(entry) if _expand(r["modules"]) - files]
    mutants = {k: m for k, m in (entry or {}).get("mutants", {}).items() if m["file"] not in files}
    mutants.update(run["mutants"])
    return {"runs": older + [{k: v for k, v in run.items() if k != "mutants"}], "mutants": mutants}


def render(results: dict[str, Any], equivalents: list[dict[str, str]]) -> str:
    s = summarize(results, equivalents)
    out = [f"""# Testing: what the suite checks, and how well (mutation testing)

`python -m pytest -n 2` runs the suite (tests/). Its oracles are independent of the code
they check: the brute-force point-set walker (tests/oracle.py) for the exact nest analysis,
the explicit Timeloop walker (tests/timeloop_oracle.py) and thirteen real Timeloop outputs
(../shared/timeloop_conformance) for the default one, hand-derived cases, papers' tables and
hypothesis properties. Tests that need ../shared fail without it (it is part of CI); skips
are only for optional extras (`bitloop[onnx]`, `[gguf]`, `[keras]`, `[hf]`, `[minilm]`,
`[dask]`), a root file system without `chattr`, and non-Linux `/proc`.

## Mutation testing

`benchmarks/mutation.py` (not part of CI) runs mutmut {results['tool_version']} on three groups of
modules, each mutant against the group's test files only. A surviving mutant is either
equivalent (it cannot change any result; listed below with the reason, matched on its diff
by benchmarks/mutation_equivalents.yaml) or counted as not killed; a mutant in a function no
selected test calls ("no tests") counts as not killed. Kill rate = (killed + timed out) /
(mutants - equivalent - not run), where "not run" are the mutants a time-boxed run did not reach.
Every survivor of `mapper/nest.py` and `mapper/model.py` is listed and argued below; elsewhere
the survivors are counted per function, not examined one by one. This page is generated from
benchmarks/mutation_results.json (last run {results['date']}; `python benchmarks/mutation.py --render`
re-renders it).

```bash
pip install mutmut=={results['tool_version']}
python benchmarks/mutation.py                   # every group: copies the tree to $BITLOOP_MUTATION_DIR
python benchmarks/mutation.py --group nest      # (default /tmp/bitloop-mutation), never into the repo
```

The runs behind the tables below (wall time on the 2 cores of the development machine, shared
with other jobs and with each other: the groups ran overlapping):

| group | command | modules mutated | test files | wall time |
|---|---|---|---|---|"""]
    skipped = []
    for name in GROUPS:
        done: set[str] = set()
        for run in runs_of(results["groups"].get(name)):
            tests = ", ".join(f"`{Path(t).name}`" for t in run.get("tests", GROUPS[name]["tests"]))
            modules = ", ".join(f"`{m}`" for m in run["modules"])
            stop = f" (stopped at the {run['time_box_minutes']:g} min time box)" if run.get("time_box_minutes") else ""
            out.append(f"| {name} | `{command(name, run)}` | {modules} | {tests} | {run['seconds'] / 60:.0f} min{stop} |")
            done |= _expand(run["modules"])
        skipped.append((name, _expand(GROUPS[name]["modules"]) - done))
    if any(files for _, files in skipped):
        out.append("\nNot mutated by these runs (time-boxed to the 2 shared cores; `--modules` picks a subset):\n")
        out += [f"* {name}: " + ", ".join(f"`{f}`" for f in sorted(files)) for name, files in skipped if files]
    out.append("\n| module | mutants | killed (of which timed out) | equivalent | survived | no test calls it "
               "| not run (time box) | kill rate (of the non-equivalent run) |")
    out.append("|---|---|---|---|---|---|---|---|")
    for mod, r in sorted(s["modules"].items()):
        out.append(f"| `{mod}.py` | {r['mutants']} | {r['killed']} ({r['timeout']}) | {r['equivalent']} | {r['survived']} | "
                   f"{r['no_tests']} | {r['not_run']} | {_percent(r['kill_rate'])} |")
    out.append("\n## Survivors\n")
    out.append("Equivalent mutants, by module (the diff's changed line, before -> after, and why no result can change):\n")
    for mod in sorted(s["modules"]):
        eq = [v for v in s["survivors"] if v["module"] == mod and v["reason"]]
        if not eq:
            continue
        out.append(f"**`{mod}.py`** ({len(eq)})\n")
        for v in eq:
            out.append(f"* `{_clip(v['before'])}` -> `{_clip(v['after'])}`: {v['reason']}")
        out.append("")
    live = [v for v in s["survivors"] if not v["reason"]]
    listed = [v for v in live if v["module"] in LISTED]
    out.append(f"Not killed and not shown equivalent in {', '.join(f'`{m}.py`' for m in LISTED)} "
               f"({len(listed)}){':' if listed else ': none.'}\n")
    for v in listed:
        out.append(f"* `{v['module']}.py` ({v['status']}) `{_clip(v['before'])}` -> `{_clip(v['after'])}`")
    rest: dict[tuple[str, str], dict[str, int]] = {}
    for v in live:
        if v["module"] not in LISTED:
            counts = rest.setdefault((v["module"], function_of(v["mutant"])), {})
            counts[v["status"]] = counts.get(v["status"], 0) + 1
    if rest:
        out.append("\nNot killed elsewhere (not examined one by one), by function:\n")
        out.append("| module | function | not killed |")
        out.append("|---|---|---|")
        for (mod, fn), counts in sorted(rest.items()):
            out.append(f"| `{mod}.py` | `{fn}` | {', '.join(f'{n} {status}' for status, n in sorted(counts.items()))} |")
    return "\n".join(out).rstrip() + "\n"


def function_of(mutant: str) -> str:
    """``pkg.mod.x_fn__mutmut_3`` -> ``fn``; ``pkg.mod.xǁClassǁmethod__mutmut_3`` -> ``Class.method``."""
    name = mutant.rsplit(".", 1)[-1].rsplit("__mutmut_", 1)[0]
    return name.removeprefix("xǁ").replace("ǁ", ".") if name.startswith("xǁ") else name.removeprefix("x_")


def _percent(rate: float | None) -> str:
    return "none run" if rate is None else f"{100 * rate:.1f}%"


def _clip(text: str, n: int = 110) -> str:
    text = text.replace("`", "'").replace("|", "\\|")
    return text if len(text) <= n else text[: n - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", nargs="+", choices=sorted(GROUPS), default=list(GROUPS))
    parser.add_argument("--render", action="store_true", help="only render docs/testing.md from the results file")
    parser.add_argument("--modules", nargs="+", help="mutate only these files (globs) of the one --group given")
    parser.add_argument("--time-box", type=float, metavar="MINUTES",
                        help="stop each group's mutmut run after this long; untested mutants are reported as not run")
    parser.add_argument("--max-children", type=int, default=max(1, min(2, os.cpu_count() or 1)),
                        help="mutants tested in parallel (mutmut's --max-children)")
    args = parser.parse_args(argv)
    if args.modules and len(args.group) != 1:
        parser.error("--modules needs exactly one --group")
    sys.path.insert(0, str(ROOT))
    from workloads.yamlio import write_atomic

    if not args.render:
        from importlib.metadata import version

        runs = {}
        for name in args.group:
            print(f"mutating group {name} ...", flush=True)
            runs[name] = run_group(name, args.max_children, args.modules, args.time_box)
        # read only now: another group may have finished meanwhile (runs of different groups can overlap)
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"groups": {}}
        for name, run in runs.items():
            results["groups"][name] = merge(results["groups"].get(name), run)
        results["groups"] = {k: results["groups"][k] for k in GROUPS if k in results["groups"]}
        results["tool_version"] = version("mutmut")
        results["date"] = datetime.date.today().isoformat()
        write_atomic(RESULTS, json.dumps(results, indent=1, sort_keys=True) + "\n")
    results = json.loads(RESULTS.read_text())
    text = render(results, load_equivalents())
    write_atomic(DOC, text)
    summary = summarize(results, load_equivalents())
    for mod, r in sorted(summary["modules"].items()):
        print(f"{mod:40s} {r['mutants']:5d} mutants  kill rate {_percent(r['kill_rate']):>6s}  "
              f"({r['survived']} survived, {r['no_tests']} no tests, {r['equivalent']} equivalent, {r['not_run']} not run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
