"""Bad-input campaign: every case ends in one line ``error: FILE: KEY: ...`` with exit status 2,
or in a result (exit 0) whose outputs hold no NaN, infinity, negative or overflowed number.
No traceback, no hang (each case runs under a time limit).

Two parts:
* hand-written cases, at least one per root cause found by the campaign of issue 14 (deep
  nesting, alias bombs, wrong-typed v0.3 nodes, NaN/inf, int64 overflow, component attribute
  ranges, plug-in estimates, duplicate data spaces, weights that do not fit, CLI options,
  --out, damaged caches, huge model configs and batches);
* generated cases: every leaf of a valid arch (v0.3 and v0.4), problem, mapping, ERT, spec and
  component library replaced by hostile values, run through the CLI verb that reads it.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from mapper.cli import main

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
GEMM = REPO / "specs" / "examples" / "gemm_ws"
TIME_LIMIT_S = 60
FAST = ["--max-evaluations", "200", "--jobs", "1"]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BITLOOP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BITLOOP_ALLOW_PLUGINS", raising=False)


class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {seconds} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the CLI in-process; returns (exit status, stderr). A traceback fails the test."""
    capsys.readouterr()
    with time_limit(TIME_LIMIT_S):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:            # argparse usage errors
            code = int(exc.code or 0)
    return code, capsys.readouterr().err.strip()


def sane_numbers(data: Any, where: str = "") -> None:
    """No NaN, infinity, negative or beyond-int64 number anywhere in ``data``."""
    if isinstance(data, dict):
        for k, v in data.items():
            sane_numbers(v, f"{where}.{k}")
    elif isinstance(data, list):
        for i, v in enumerate(data):
            sane_numbers(v, f"{where}[{i}]")
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        assert math.isfinite(data) and data >= 0, f"{where} = {data}"
        assert not isinstance(data, int) or data < 2**63, f"{where} = {data} overflows int64"


def strict_json(path: Path) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{path}: {name} is not valid JSON")
    return json.loads(path.read_text(), parse_constant=refuse)


def check_outputs(out: Path) -> None:
    for path in out.rglob("*.json"):
        sane_numbers(strict_json(path), path.name)


def expect(code: int, err: str, out: Path | None, pattern: str | None = None) -> str:
    """The case's contract: a one-line error with status 2, or success with sane outputs."""
    assert "Traceback" not in err
    if code == 0:
        assert pattern is None, f"expected an error matching {pattern!r}, got success"
        if out is not None and out.exists():
            check_outputs(out)
        return "ok"
    assert code == 2, f"exit status {code}: {err[-300:]}"
    assert err.count("\n") == 0 and err.startswith("error: ") and len(err) < 800, err
    if pattern is not None:
        assert pattern in err, f"{pattern!r} not in {err!r}"
    return "error"


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    return path


def model_argv(tmp: Path, arch: Path = GEMM / "arch.yaml", problem: Path = GEMM / "problem.yaml",
               mapping: Path = GEMM / "mapping_ws.yaml", ert: Path = GEMM / "ERT.yaml") -> list[Any]:
    return ["model", "--arch", arch, "--problem", problem, "--mapping", mapping, "--ert", ert, "--out", tmp / "out", "--json"]


TINY_GPT2 = {"model_type": "gpt2", "n_embd": 16, "n_head": 2, "n_layer": 1, "n_positions": 64, "n_inner": 32,
             "vocab_size": 100}


def spec_with(tmp: Path, old: str, new: str, name: str = "spec.yaml") -> Path:
    text = (DATA / "tiny_spec.yaml").read_text()
    assert old in text
    return write(tmp / name, text.replace(old, new))


# ---- hand-written cases: one or more per root cause ----------------------------------------
Case = Callable[[Path], tuple[list[Any], str]]   # -> (argv, text the one-line error must contain)
CASES: dict[str, Case] = {}


def case(fn: Case) -> Case:
    CASES[fn.__name__] = fn
    return fn


@case
def deep_yaml_spec(tmp: Path):
    return ["ert", "--spec", write(tmp / "deep.yaml", "spec: " + "[" * 5000 + "]" * 5000), "--out", tmp / "out"], \
        "nested deeper than 100 levels"


@case
def deep_json_config(tmp: Path):
    return ["search", "--spec", DATA / "tiny_spec.yaml", "--model", write(tmp / "config.json", "[" * 100000 + "]" * 100000),
            *FAST], "JSON nested too deeply"


@case
def alias_bomb_arch(tmp: Path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    return model_argv(tmp, arch=write(tmp / "arch.yaml", "\n".join(lines) + "\narchitecture: *a9\n")), \
        "through aliases (limit MAX_YAML_NODES)"


@case
def recursive_alias_problem(tmp: Path):
    return model_argv(tmp, problem=write(tmp / "p.yaml", "problem: &p {shape: *p}\n")), "recursive alias"


@case
def huge_integer_literal(tmp: Path):
    text = (GEMM / "problem.yaml").read_text().replace("M: 4", "M: " + "9" * 5000)
    return model_argv(tmp, problem=write(tmp / "p.yaml", text)), "invalid YAML value"


@case
def binary_garbage_mapping(tmp: Path):
    return model_argv(tmp, mapping=write(tmp / "m.yaml", bytes(range(256)) * 4)), "cannot read"


def v03_argv(tmp: Path, arch: Path) -> list[Any]:
    """The model verb on a v0.3 arch with the conv problem and mapping (no ERT: energies 0 pJ)."""
    return ["model", "--arch", arch, "--problem", DATA / "problem_conv.yaml", "--mapping", DATA / "mapping_conv.yaml",
            "--out", tmp / "out", "--json"]


@pytest.mark.parametrize("where, value", [(("subtree", 0, "local"), 5), (("subtree", 0, "subtree"), {"a": 1}),
                                          (("subtree", 0, "subtree", 0, "attributes"), [1, 2]),
                                          (("subtree", 0, "local", 0), "DRAM")])
def test_wrong_typed_v03_node(tmp_path: Path, capsys: pytest.CaptureFixture[str], where: tuple, value: Any) -> None:
    data = yaml.safe_load((DATA / "arch_v03.yaml").read_text())
    arch = write(tmp_path / "a.yaml", _dump(_replace(data, ("architecture", *where), value)))
    code, err = run(v03_argv(tmp_path, arch), capsys)
    assert expect(code, err, tmp_path / "out", "expected a") == "error"


@case
def nan_clock(tmp: Path):
    return ["ert", "--spec", spec_with(tmp, "clock_MHz: 200", "clock_MHz: .nan"), "--out", tmp / "out"], \
        "spec.clock_MHz: expected a finite number"


@case
def inf_clock(tmp: Path):
    return ["search", "--spec", spec_with(tmp, "clock_MHz: 200", "clock_MHz: .inf"), "--model", "gpt2", *FAST], \
        "spec.clock_MHz: expected a finite number"


@case
def nan_ert_energy(tmp: Path):
    ert = write(tmp / "ERT.yaml", (GEMM / "ERT.yaml").read_text().replace("energy: 10.0", "energy: .nan"))
    return model_argv(tmp, ert=ert), "expected a finite number"


@case
def inf_problem_bound(tmp: Path):
    return model_argv(tmp, problem=write(tmp / "p.yaml", (GEMM / "problem.yaml").read_text().replace("K: 4", "K: .inf"))), \
        "problem.instance.K"


@case
def nan_bandwidth(tmp: Path):
    arch = write(tmp / "a.yaml", (GEMM / "arch.yaml").read_text().replace("read_bandwidth: 2", "read_bandwidth: .nan"))
    return model_argv(tmp, arch=arch), "read_bandwidth"


@case
def tiny_bandwidth_overflows_cycles(tmp: Path):
    spec = spec_with(tmp, "read_bandwidth: 8", "read_bandwidth: 1e-300")
    return ["search", "--spec", spec, "--model", "gpt2", *FAST], "MAX_CYCLES"


@case
def huge_problem_overflows_counts(tmp: Path):
    text = (GEMM / "problem.yaml").read_text().replace("{M: 4, N: 2, K: 4}", "{M: 16777216, N: 16777216, K: 16777216}")
    return model_argv(tmp, problem=write(tmp / "p.yaml", text)), "MAX_LAYER_MACS"


@case
def huge_dimension_bound(tmp: Path):
    text = (GEMM / "problem.yaml").read_text().replace("K: 4", "K: 1099511627776")
    return model_argv(tmp, problem=write(tmp / "p.yaml", text)), "MAX_DIM_BOUND"


@case
def negative_act_bits(tmp: Path):
    spec = spec_with(tmp, "attributes: {datawidth: 8}\n  work_model", "attributes: {datawidth: 8, act_bits: -8}\n  work_model")
    return ["ert", "--spec", spec, "--out", tmp / "out"], "attribute width_a must be a number in [0, 1099511627776], got -8"


@case
def zero_sram_banks(tmp: Path):
    spec = spec_with(tmp, "read_bandwidth: 8, write_bandwidth: 8}", "read_bandwidth: 8, write_bandwidth: 8, n_banks: 0}")
    return ["ert", "--spec", spec, "--out", tmp / "out"], "n_banks"


@case
def huge_component_attribute(tmp: Path):
    spec = spec_with(tmp, "attributes: {datawidth: 8}\n  work_model", "attributes: {datawidth: 8, weight_bits: 1e300}\n  work_model")
    return ["ert", "--spec", spec, "--out", tmp / "out"], "attribute width_b must be a number in [0, 1099511627776], got '1e300'"


@case
def negative_energy_scale(tmp: Path):
    lib = write(tmp / "lib.yaml", """\
compound_components:
  version: 0.4
  classes:
  - name: neg_mac
    attributes: {datawidth: 8}
    subcomponents:
    - {name: multiplier, class: intmultiplier, attributes: {width_a: 8, width_b: 8}}
    actions:
    - name: mac
      subcomponents:
      - {name: multiplier, actions: [{name: multiply, energy_scale: -1}]}
""")
    spec = spec_with(tmp, "class: int8_mac", "class: neg_mac")
    text = spec.read_text().replace("  work_model:", f"  components: {{libraries: [{lib.name}]}}\n  work_model:")
    return ["ert", "--spec", write(spec, text), "--out", tmp / "out"], "energy_scale: expected a finite number >= 0"


PLUGIN = """\
class Bad:
    name = "bad_adder"
    accuracy = 99
    def energy(self, q):
        if q.class_name != "intadder":
            return None
        {body}
    def area(self, q):
        return 1.0 if q.class_name == "intadder" else None
"""


@pytest.mark.parametrize("body, message", [
    ("return float('nan')", "returned nan"), ("return float('inf')", "returned inf"), ("return -1.0", "returned -1.0"),
    ("return 'cheap'", "returned 'cheap'"), ("raise RuntimeError('broken')", "raised RuntimeError: broken"),
    ("return [1]", "returned [1]"),
])
def test_plugin_estimates_are_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, message: str) -> None:
    plugin = write(tmp_path / "bad.py", PLUGIN.replace("{body}", body))
    code, err = run(["ert", "--spec", DATA / "tiny_spec.yaml", "--estimator", plugin, "--out", tmp_path / "out"], capsys)
    assert expect(code, err, None, message) == "error" and "bad_adder" in err


@case
def duplicate_dataspace(tmp: Path):
    text = (GEMM / "problem.yaml").read_text().replace("name: Inputs,", "name: Weights,")
    return model_argv(tmp, problem=write(tmp / "p.yaml", text)), "Weights"


@case
def negative_mapping_factor(tmp: Path):
    text = (GEMM / "mapping_ws.yaml").read_text().replace("factors: N=2", "factors: N=-2")
    return model_argv(tmp, mapping=write(tmp / "m.yaml", text)), "factors"


@case
def config_with_huge_hidden(tmp: Path):
    cfg = write(tmp / "config.json", json.dumps({**TINY_GPT2, "n_embd": 2**40}))
    return ["search", "--spec", DATA / "tiny_spec.yaml", "--model", cfg, *FAST], "n_embd: expected an integer in"


@case
def config_with_many_layers(tmp: Path):
    cfg = write(tmp / "config.json", json.dumps({**TINY_GPT2, "n_layer": 1e7}))
    return ["search", "--spec", DATA / "tiny_spec.yaml", "--model", cfg, *FAST], "n_layer: expected an integer in"


@case
def huge_batch(tmp: Path):
    return ["search", "--spec", DATA / "tiny_spec.yaml", "--model", "gpt2", "--batch", "100000", *FAST], "--batch"


@case
def batch_with_too_many_factorizations(tmp: Path):    # N = 2048 x 1024 = 2^21 tokens over panacea's 8 mapspace slots
    return ["search", "--spec", "panacea", "--model", "gpt2", "--batch", "2048", "--seq-len", "1024", *FAST], \
        "MAX_FACTORIZATIONS"


@case
def batch_beyond_the_dimension_limit(tmp: Path):
    cfg = write(tmp / "config.json", json.dumps({**TINY_GPT2, "n_positions": 2**20}))
    return ["search", "--spec", DATA / "tiny_spec.yaml", "--model", cfg, "--batch", "65536", "--seq-len", "1024", *FAST], \
        "MAX_DIM_BOUND"


@pytest.mark.parametrize("option, value", [("--max-evaluations", "-5"), ("--time-limit", "-1"), ("--time-limit", "nan"),
                                           ("--jobs", "0"), ("--seq-len", "0"), ("--seed", "-1"), ("--kv-len", "1e400")])
def test_bad_numeric_options(tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str) -> None:
    code, err = run(["search", "--spec", DATA / "tiny_spec.yaml", "--model", "gpt2", option, value], capsys)
    assert expect(code, err, None, option) == "error"


@case
def sweep_value_nan(tmp: Path):
    return ["sweep", "--spec", DATA / "tiny_spec.yaml", "--model", "gpt2", "--param", "arch.GLB.depth=64,nan", *FAST], \
        "--param arch.GLB.depth=nan"


@case
def sweep_value_infinite(tmp: Path):
    return ["sweep", "--spec", DATA / "tiny_spec.yaml", "--model", "gpt2", "--param", "clock_MHz=1e400", *FAST], \
        "expected a finite number"


@case
def negative_objective_weight(tmp: Path):
    return ["search", "--spec", DATA / "tiny_spec.yaml", "--model", "gpt2", "--objective", "energy=-1", *FAST], "--objective"


@case
def out_is_a_file(tmp: Path):
    return ["search", "--spec", DATA / "tiny_spec.yaml", "--model", "gpt2", "--out", write(tmp / "taken", "x"), *FAST], \
        "a file with this name exists"


@case
def out_under_a_file(tmp: Path):
    return ["compare", "--specs", DATA / "tiny_spec.yaml", "--model", "gpt2", "--out", write(tmp / "f", "x") / "sub", *FAST], \
        "cannot write to the output folder"


@case
def spec_plugin_without_opt_in(tmp: Path):
    write(tmp / "est.py", "raise SystemExit('plug-in code ran')\n")
    spec = spec_with(tmp, "  work_model:", "  components: {estimators: [est.py]}\n  work_model:")
    return ["ert", "--spec", spec, "--out", tmp / "out"], "pass --allow-plugins or set BITLOOP_ALLOW_PLUGINS=1"


@case
def unknown_spec_name(tmp: Path):
    return ["ert", "--spec", "no_such_accelerator", "--out", tmp / "out"], "spec not found"


@case
def wrong_typed_libraries(tmp: Path):
    return ["ert", "--spec", spec_with(tmp, "  work_model:", "  components: {libraries: 7}\n  work_model:"), "--out",
            tmp / "out"], "spec.components.libraries: expected a list"


@case
def non_string_library_entry(tmp: Path):
    return ["ert", "--spec", spec_with(tmp, "  work_model:", "  components: {libraries: [[a, b]]}\n  work_model:"),
            "--out", tmp / "out"], "spec.components.libraries[0]: expected a library name or a YAML path"


@case
def library_name_longer_than_the_file_system_allows(tmp: Path):
    return ["ert", "--spec", spec_with(tmp, "  work_model:", "  components: {libraries: [" + "x" * 400 + "]}\n  work_model:"),
            "--out", tmp / "out"], "not a readable component library path"


@pytest.mark.parametrize("name", sorted(CASES))
def test_case(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv, pattern = CASES[name](tmp_path)
    code, err = run(argv, capsys)
    assert expect(code, err, tmp_path / "out", pattern) == "error"


def test_bad_work_model_parameter_is_checked_when_models_are_built(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (REPO / "specs" / "bitvert.yaml").read_text()
    assert "group_size: 32, sub_group: 8, pruning" in text
    spec = write(tmp_path / "s.yaml", text.replace("group_size: 32, sub_group: 8, pruning", "group_size: 1.0e300, sub_group: 8, pruning"))
    code, err = run(["search", "--spec", spec, "--model", "gpt2", "--seq-len", "8", *FAST], capsys)
    assert expect(code, err, None, "spec.work_model.group_size: expected an integer") == "error"


# ---- weights --------------------------------------------------------------------------------
def _tiny_checkpoint(tmp: Path, shape: tuple[int, int], fill: float | None = None) -> Path:
    import torch
    from safetensors.torch import save_file

    w = torch.randn(*shape) * 0.02
    if fill is not None:
        w[0, 0] = fill
    path = tmp / "w.safetensors"
    save_file({"h.0.mlp.c_fc.weight": w}, str(path))
    return path


@pytest.mark.parametrize("shape, fill, message", [((16, 32), None, "does not fit layer"),     # c_fc is [16 -> 32]: 512 elements
                                                  ((32, 17), None, "does not fit layer"),
                                                  ((16, 32), float("nan"), "NaN or infinite")])
def test_weights_that_do_not_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str], shape: tuple[int, int],
                                 fill: float | None, message: str) -> None:
    cfg = write(tmp_path / "config.json", json.dumps(TINY_GPT2))
    w = _tiny_checkpoint(tmp_path, shape, fill)
    if fill is None and shape == (16, 32):       # the right size: accepted (Conv1D stores [in, out])
        code, err = run(["search", "--spec", REPO / "specs" / "bitvert.yaml", "--model", cfg, "--weights", w,
                         "--seq-len", "4", *FAST, "--out", tmp_path / "out"], capsys)
        assert expect(code, err, tmp_path / "out") == "ok"
        summary = strict_json(tmp_path / "out" / "summary.json")
        assert summary["provenance"]["counts"]["weights"]["measured"] == 1   # the one tensor in the file
        w = _tiny_checkpoint(tmp_path, (16, 33), None)
    code, err = run(["search", "--spec", REPO / "specs" / "bitvert.yaml", "--model", cfg, "--weights", w, "--seq-len", "4",
                     *FAST], capsys)
    assert expect(code, err, None, message) == "error"


# ---- output folders ---------------------------------------------------------------------------
@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` unwritable for this process: chmod for a user; for root (who may write
    anywhere) the immutable attribute."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a file system without chattr +i: no way to make a read-only folder")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def test_read_only_out_fails_before_the_work(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    started = []
    import mapper.run

    monkeypatch.setattr(mapper.run, "search", lambda *a, **k: started.append(1))   # must never be reached
    with read_only(ro):
        code, err = run(["search", "--spec", DATA / "tiny_spec.yaml", "--model", "gpt2", *FAST, "--out", ro], capsys)
        assert expect(code, err, None, "cannot write to the output folder") == "error"
        code, err = run(["search", "--spec", DATA / "tiny_spec.yaml", "--model", "gpt2", *FAST, "--out", ro / "sub"], capsys)
        assert expect(code, err, None, "cannot write to the output folder") == "error"
    assert not started and not (ro / "sub").exists()


def test_stale_out_files_are_removed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    (out / "mappings").mkdir(parents=True)
    write(out / "mappings" / "old_layer.yaml", "stale")
    (out / "stats").mkdir()
    write(out / "stats" / "old.stats.txt", "stale")
    write(out / "notes.txt", "the user's own file")
    cfg = write(tmp_path / "config.json", json.dumps(TINY_GPT2))
    code, err = run(["search", "--spec", DATA / "tiny_spec.yaml", "--model", cfg, "--seq-len", "4", *FAST, "--out", out], capsys)
    assert expect(code, err, out) == "ok"
    assert not (out / "mappings" / "old_layer.yaml").exists() and not (out / "stats" / "old.stats.txt").exists()
    assert (out / "notes.txt").exists()
    first = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    # A second run on another model: files only the first run wrote disappear.
    cfg2 = write(tmp_path / "config2.json", json.dumps({**TINY_GPT2, "n_embd": 32, "n_inner": 64}))
    code, err = run(["search", "--spec", DATA / "tiny_spec.yaml", "--model", cfg2, "--seq-len", "4", *FAST, "--out", out],
                    capsys)
    assert code == 0
    second = {p.relative_to(out) for p in out.rglob("*") if p.is_file()}
    manifest = set(strict_json(out / ".bitloop_outputs.json")["files"])
    assert {str(p) for p in second} - {".bitloop_outputs.json", "notes.txt"} == manifest
    assert any(p.parts[0] == "mappings" for p in first - second)   # the first model's mappings are gone


def test_outputs_honour_the_umask(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = os.umask(0o022)
    try:
        code, err = run(model_argv(tmp_path), capsys)
    finally:
        os.umask(old)
    assert code == 0, err
    assert ((tmp_path / "out" / "model.json").stat().st_mode & 0o777) == 0o644
    old = os.umask(0o077)
    try:
        run(model_argv(tmp_path), capsys)
    finally:
        os.umask(old)
    assert ((tmp_path / "out" / "model.json").stat().st_mode & 0o777) == 0o600


# ---- generated cases: hostile values at every leaf of valid inputs -------------------------------
HOSTILE: list[Any] = [float("nan"), float("inf"), -8, 0, "abc", [1, 2], {"a": 1}, None, 10**30, -float("inf"), 1e-300, True]


def _leaves(data: Any, path: tuple = ()) -> Iterator[tuple]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _leaves(v, path + (i,))
    else:
        yield path


def _replace(data: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        return {k: (_replace(v, rest, value) if k == head else v) for k, v in data.items()}
    return [(_replace(v, rest, value) if i == head else v) for i, v in enumerate(data)]


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False)


KINDS = {   # kind -> (base file, how the mutated file is run)
    "arch_v04": GEMM / "arch.yaml", "problem": GEMM / "problem.yaml", "mapping": GEMM / "mapping_ws.yaml",
    "ert": GEMM / "ERT.yaml", "arch_v03": DATA / "arch_v03.yaml", "spec": DATA / "tiny_spec.yaml",
}


def _generated() -> list[tuple[str, tuple, Any]]:
    cases = []
    for kind, base in KINDS.items():
        for i, path in enumerate(_leaves(yaml.safe_load(base.read_text()) if kind != "arch_v04" and kind != "spec"
                                         else _load(base))):
            for j in (0, 1):    # two hostile values per leaf, rotating through HOSTILE
                cases.append((kind, path, HOSTILE[(2 * i + j + len(kind)) % len(HOSTILE)]))
    return cases


def _load(path: Path) -> Any:
    from workloads.yamlio import load_yaml

    return load_yaml(path)


GENERATED = _generated()


@pytest.mark.parametrize("kind, path, value", GENERATED, ids=[f"{k}:{'.'.join(map(str, p))}={v!r}"[:90]
                                                              for k, p, v in GENERATED])
def test_generated(kind: str, path: tuple, value: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = KINDS[kind]
    mutated = write(tmp_path / base.name, _dump(_replace(_load(base), path, value)))
    if kind == "spec":
        argv: list[Any] = ["ert", "--spec", mutated, "--out", tmp_path / "out"]
    elif kind == "arch_v03":
        argv = v03_argv(tmp_path, mutated)
    else:
        argv = model_argv(tmp_path, **{"arch" if kind == "arch_v04" else kind: mutated})
    code, err = run(argv, capsys)
    expect(code, err, tmp_path / "out")


def test_generated_campaign_size() -> None:
    """The generated campaign covers every input kind and several hundred cases."""
    assert {k for k, _, _ in GENERATED} == set(KINDS) and len(GENERATED) >= 250


def test_user_guide_limits_table_matches_the_code() -> None:
    """The limits quoted in docs/user_guide.md are the ones the code enforces."""
    from components.estimators.base import MAX_ATTRIBUTE
    from mapper import cli_options, limits
    from workloads import hf_config, yamlio

    text = (REPO / "docs" / "user_guide.md").read_text()
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in text.splitlines()
            if line.startswith("| ") and line.count("|") == 4}

    def power(n: float) -> str:
        return f"2^{int(math.log2(n))}"
    expected = {
        "YAML nesting (`MAX_YAML_DEPTH`)": f"{yamlio.MAX_YAML_DEPTH} levels",
        "YAML size after expanding aliases (`MAX_YAML_NODES`)": f"{yamlio.MAX_YAML_NODES:,} nodes",
        "iterations of one problem dimension (`MAX_DIM_BOUND`)": power(limits.MAX_DIM_BOUND),
        "MACs of one layer (`MAX_LAYER_MACS`)": power(limits.MAX_LAYER_MACS),
        "ordered factorizations of one dimension (`MAX_FACTORIZATIONS`)": f"{limits.MAX_FACTORIZATIONS:,}",
        "cycles of one layer (`MAX_CYCLES`)": power(limits.MAX_CYCLES),
        "instances of one arch level (`MAX_INSTANCES`)": power(limits.MAX_INSTANCES),
        "numeric primitive attribute (`MAX_ATTRIBUTE`)": f"{power(MAX_ATTRIBUTE)}, and >= 0",
        "HF config sizes / layers": f"{power(hf_config.MAX_CONFIG_FIELD)} / {hf_config.MAX_LAYERS}",
        "`--batch`, `--seq-len`/`--kv-len`, `--jobs`":
            f"{power(cli_options.MAX_BATCH)}, {power(cli_options.MAX_SEQ_LEN)}, {cli_options.MAX_JOBS}",
    }
    assert {k: rows.get(k) for k in expected} == expected


# ---- plug-in opt-in -----------------------------------------------------------------------------
MARKING_PLUGIN = """\
from pathlib import Path
Path(__file__).with_name("ran").write_text("plug-in code ran")
class Adders:
    name = "marked_adders"
    accuracy = 99
    def energy(self, q):
        return 0.125 if q.class_name == "intadder" else None
    def area(self, q):
        return 7.0 if q.class_name == "intadder" else None
"""


def _plugin_spec(tmp: Path) -> Path:
    write(tmp / "est.py", MARKING_PLUGIN)
    return spec_with(tmp, "  work_model:", "  components: {estimators: [est.py]}\n  work_model:")


@pytest.mark.parametrize("verb", ["ert", "search", "compare", "sweep", "model"])
def test_spec_plugins_need_an_explicit_opt_in(tmp_path: Path, capsys: pytest.CaptureFixture[str], verb: str) -> None:
    spec = _plugin_spec(tmp_path)
    argv = {"ert": ["ert", "--spec", spec, "--out", tmp_path / "out"],
            "search": ["search", "--spec", spec, "--model", "gpt2", *FAST],
            "compare": ["compare", "--specs", DATA / "tiny_spec.yaml", spec, "--model", "gpt2", *FAST],
            "sweep": ["sweep", "--spec", spec, "--model", "gpt2", "--param", "arch.GLB.depth=64", *FAST],
            "model": ["model", "--spec", spec, "--problem", GEMM / "problem.yaml", "--mapping", GEMM / "mapping_ws.yaml"]}[verb]
    code, err = run(argv, capsys)
    assert expect(code, err, None, "spec.components.estimators[0]: est.py is Python code") == "error"
    assert not (tmp_path / "ran").exists()


def test_opt_in_by_flag_or_environment_and_command_line_plugins(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _plugin_spec(tmp_path)
    code, err = run(["ert", "--spec", spec, "--allow-plugins", "--out", tmp_path / "flag"], capsys)
    assert code == 0 and (tmp_path / "ran").exists(), err
    assert "BITLOOP_ALLOW_PLUGINS" not in os.environ                  # the flag does not outlive the command
    summary = (tmp_path / "flag" / "ERT_summary.yaml").read_text()
    assert "marked_adders" in summary
    (tmp_path / "ran").unlink()
    monkeypatch.setenv("BITLOOP_ALLOW_PLUGINS", "1")
    code, err = run(["ert", "--spec", spec, "--out", tmp_path / "env"], capsys)
    assert code == 0 and (tmp_path / "ran").exists(), err
    monkeypatch.delenv("BITLOOP_ALLOW_PLUGINS")
    (tmp_path / "ran").unlink()
    # Named on the command line by the user: runs without the opt-in.
    code, err = run(["ert", "--spec", DATA / "tiny_spec.yaml", "--estimator", tmp_path / "est.py", "--out", tmp_path / "cli"],
                    capsys)
    assert code == 0 and (tmp_path / "ran").exists(), err
    assert "marked_adders" in (tmp_path / "cli" / "ERT_summary.yaml").read_text()


def test_compare_and_sweep_outputs_carry_run_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from workloads.provenance import __version__, file_digest

    cfg = write(tmp_path / "config.json", json.dumps(TINY_GPT2))
    spec = DATA / "tiny_spec.yaml"
    common = ["--model", cfg, "--seq-len", "4", *FAST]
    assert run(["compare", "--specs", spec, "baselines/sa_ws", *common, "--out", tmp_path / "cmp"], capsys)[0] == 0
    assert run(["sweep", "--spec", spec, "--param", "arch.GLB.depth=1024,2048", *common, "--out", tmp_path / "swp"],
               capsys)[0] == 0
    cmp = strict_json(tmp_path / "cmp" / "compare.json")["bitloop"]
    swp = strict_json(tmp_path / "swp" / "sweep.json")["bitloop"]
    for meta, verb in ((cmp, "compare"), (swp, "sweep")):
        assert meta["version"] == __version__ and len(meta["code_digest"]) == 16
        assert meta["command"].startswith(f"bitloop {verb} --spec")
    assert cmp["inputs"]["specs"]["tiny"]["file_digest"] == file_digest(spec)
    assert cmp["inputs"]["models"][f"{cfg} (prefill)"]["file_digest"] == file_digest(cfg)
    assert swp["inputs"]["spec"]["file_digest"] == file_digest(spec) and swp["inputs"]["spec"]["key"]


@pytest.mark.parametrize("value", ["0", "-2"])
def test_zero_or_negative_bandwidth_in_a_spec_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         value: str) -> None:
    """A bandwidth of 0 words/cycle would otherwise read as 'unlimited'."""
    spec = spec_with(tmp_path, "read_bandwidth: 8", f"read_bandwidth: {value}")
    code, err = run(["search", "--spec", spec, "--model", "gpt2", *FAST], capsys)
    assert expect(code, err, None, "read_bandwidth") == "error"


def test_a_closed_stdout_ends_quietly_after_the_outputs_are_written(tmp_path: Path) -> None:
    """`search ... | head -1`: the reader goes away; the search still writes its files, exits
    with 141 (SIGPIPE's shell status) and prints no traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "mapper", "search", "--spec", str(DATA / "tiny_spec.yaml"), "--model",
                             "gpt2", *FAST, "--out", str(tmp_path / "out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=REPO, env={**os.environ, "BITLOOP_CACHE_DIR": str(tmp_path / "cache")})
    proc.stdout.close()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 141 and b"Traceback" not in err, err.decode()
    assert (tmp_path / "out" / "summary.json").exists() and (tmp_path / "out" / "layers.csv").exists()
