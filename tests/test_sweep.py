"""Sweeps (`python -m mapper sweep`, `mapper.sweep.sweep`): buffer-capacity monotonicity, BitVert
sub-group ordering (bbs_bitvert.txt Table IV), Dask LocalCluster == local, kill-and-resume,
Pareto fronts, and one-line errors for bad parameters."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mapper.cli import main
from mapper.spec import SPECS_DIR, load_spec
from mapper.sweep import RUN_COLUMNS, sweep
from mapper.sweep_output import pareto_mask
from mapper.sweep_points import expand_points, parse_param, parse_params
from workloads.graph import LayerGraph
from workloads.problem import gemm
from workloads.yamlio import InputError

REPO = Path(__file__).resolve().parents[1]
BITVERT_SPEC = SPECS_DIR / "bitvert.yaml"
FAST = {"max_evaluations": 2000, "patience": 5, "exhaustive_limit": 2000}

# DRAM -> GLB -> 4 INT8 MACs; small enough that every layer's mapspace is searched exhaustively.
SPEC_TEXT = """\
spec:
  name: glb_sweep
  clock_MHz: 200
  technology: 28nm
  architecture:
    version: 0.4
    nodes:
    - !Container
      name: system
    - !Component
      name: DRAM
      class: offchip_DRAM
      attributes: {type: LPDDR4, width: 64, datawidth: 8}
    - !Component
      name: GLB
      class: smartbuffer_SRAM
      attributes: {depth: 64, width: 64, datawidth: 8, read_bandwidth: 8, write_bandwidth: 8}
    - !Container
      name: PE
      spatial: {meshX: 4}
    - !Component
      name: mac
      class: int8_mac
      attributes: {datawidth: 8}
EXTRA
  work_model: {family: dense}
"""

# Prices every on-chip primitive of SPEC_TEXT at 0 pJ (areas still come from the built-in
# estimators): the energy objective is then exactly the DRAM access energy.
OFFCHIP_ONLY_CSV = "class,action,energy_pJ,area_um2\nSRAM,*,0,\ncounter,*,0,\nintmultiplier,*,0,\nintadder,*,0,\nreg,*,0,\n"

TINY_GPT2 = {"model_type": "gpt2", "n_embd": 16, "n_head": 2, "n_layer": 1, "n_positions": 64, "n_inner": 32,
             "vocab_size": 100}


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Result and statistics caches of every test live in its tmp_path."""
    monkeypatch.setenv("BITLOOP_CACHE_DIR", str(tmp_path / "cache"))


def _spec(tmp_path: Path, extra: str = "", name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(SPEC_TEXT.replace("EXTRA\n", extra))
    return path


def _graph(*shapes: tuple[int, int, int]) -> LayerGraph:
    g = LayerGraph("toy")
    prev: list[str] = []
    for i, (m, n, k) in enumerate(shapes or ((32, 16, 64), (16, 16, 32))):
        g.add_layer(f"fc{i}", gemm(m, n, k), "linear", inputs=prev, weight_name=f"fc{i}.weight")
        prev = [f"fc{i}"]
    return g


def _metrics(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=list(RUN_COLUMNS)).reset_index(drop=True)


# ---- parameters, points, Pareto ------------------------------------------------------------
def test_parse_and_expand() -> None:
    assert parse_param("arch.GLB.depth=64, 128,256") == ("arch.GLB.depth", [64, 128, 256])
    assert parse_param("work_model.pruning=none,moderate") == ("work_model.pruning", ["none", "moderate"])
    assert parse_param("clock_MHz=500,1e3") == ("clock_MHz", [500, 1000.0])
    params = parse_params(["a.x=1,2", "b=3,4,5"])
    grid = expand_points(params, "grid")
    assert len(grid) == 6 and grid[0] == {"a.x": 1, "b": 3} and grid[1] == {"a.x": 1, "b": 4} and grid[-1] == {"a.x": 2, "b": 5}
    assert expand_points(parse_params(["a=1,2", "b=3,4"]), "zip") == [{"a": 1, "b": 3}, {"a": 2, "b": 4}]
    with pytest.raises(InputError, match="same number of values"):
        expand_points(params, "zip")
    for bad in ("arch.GLB.depth", "arch.GLB.depth=", "=1,2", "a..b=1", "a=1,,2"):
        with pytest.raises(InputError, match="--param"):
            parse_param(bad)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=12))
def test_pareto_mask_is_the_set_of_non_dominated_points(points: list[tuple[int, int]]) -> None:
    df = pd.DataFrame(points, columns=["energy_pJ", "cycles"]).assign(status="ok")
    mask = pareto_mask(df, ["energy_pJ", "cycles"]).tolist()
    for i, p in enumerate(points):
        dominated = any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in points)
        assert mask[i] == (not dominated)


@pytest.mark.parametrize("param, key", [
    ("foo.bar=1,2", "foo"),                                       # no such spec key
    ("arch.NOPE.depth=1", "arch.NOPE.depth"),                    # no such arch node
    ("arch.GLB.deph=128,256", "arch.GLB.deph"),                  # typo: an attribute nothing reads
    ("arch.GLB.depth=64,abc", "attributes.depth"),               # a value of the wrong type
    ("clock_MHz=100,0", "spec.clock_MHz"),                       # out of range
])
def test_bad_param_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], param: str, key: str) -> None:
    spec = _spec(tmp_path)
    rc = main(["sweep", "--spec", str(spec), "--model", "gpt2", "--param", param, "--cache", str(tmp_path / "c.sqlite")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("error: --param ")
    assert param.split("=")[0] in err and key in err


def test_bad_pareto_metric_and_zip_lengths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(_spec(tmp_path))
    assert main(["sweep", "--spec", spec, "--model", "gpt2", "--param", "arch.GLB.depth=8", "--pareto", "energy_pJ,speed"]) == 2
    assert "--pareto: speed: unknown metric" in capsys.readouterr().err
    assert main(["sweep", "--spec", spec, "--model", "gpt2", "--zip", "--param", "arch.GLB.depth=8,16", "--param", "clock_MHz=100"]) == 2
    assert "--zip" in capsys.readouterr().err


def test_infeasible_point_is_a_row_not_a_crash(tmp_path: Path) -> None:
    # The GLB must keep every tensor; one 8-bit word cannot hold three tiles.
    spec = _spec(tmp_path, "  constraints:\n  - {target: GLB, type: datatype, keep: [Weights, Inputs, Outputs]}\n")
    df = sweep(spec, "toy", {"arch.GLB.width": [8], "arch.GLB.depth": [1, 64]}, graph=_graph((8, 4, 8)),
               search_options=FAST, cache=tmp_path / "c.sqlite")
    assert df["status"].tolist() == ["infeasible", "ok"]
    assert "no valid mapping" in df.loc[0, "error"] and np.isnan(df.loc[0, "energy_pJ"])
    assert df["pareto"].tolist() == [False, True]


# ---- (a) buffer capacity -------------------------------------------------------------------
def test_glb_capacity_sweep_dram_traffic_non_increasing(tmp_path: Path) -> None:
    """DRAM traffic can only fall as the global buffer grows, when it is what the mapper minimizes.

    Why this is a theorem here, not an observation: only the GLB capacity changes between
    points, so a larger buffer's mapspace contains the smaller one's (capacity only decides
    validity); every on-chip energy is priced at 0 pJ and DRAM has no leakage, so the energy
    objective is exactly the DRAM access energy; and every layer is searched exhaustively.
    The optimum over a superset cannot be worse. (With real SRAM prices the per-access GLB
    energy grows with depth and the best *total* energy need not fall; see the second sweep.)
    """
    (tmp_path / "offchip_only.csv").write_text(OFFCHIP_ONLY_CSV)
    spec = _spec(tmp_path, "  components: {estimators: [offchip_only.csv]}\n")
    depths = [2, 8, 32, 128, 512]
    base = load_spec(spec)
    for d in depths:  # the premise: energy is DRAM access energy only
        ert = base.with_overrides({"arch.GLB.depth": d}).ert
        assert all(v == 0 for k, acts in ert.energy_pJ.items() if not k.endswith("DRAM") for v in acts.values())
        assert ert.energy("system.DRAM", "DRAM", "leak") == 0
    per_access = base.ert.energy("system.DRAM", "DRAM", "read")
    df = sweep(spec, "toy", {"arch.GLB.depth": depths}, graph=_graph(), objective="energy", jobs=2,
               search_options={"mode": "exhaustive"}, cache=tmp_path / "c.sqlite", out=tmp_path / "out")
    assert (df["status"] == "ok").all() and df["arch.GLB.depth"].tolist() == depths
    assert np.allclose(df["energy_pJ"], df["energy_DRAM_pJ"])
    accesses = df["energy_DRAM_pJ"] / per_access            # DRAM vector accesses (all actions cost the same)
    assert np.allclose(accesses, accesses.round())
    assert (np.diff(accesses) <= 0).all(), accesses.tolist()
    assert accesses.iloc[-1] < accesses.iloc[0]               # and the capacity does matter
    assert (np.diff(df["area_GLB_um2"]) > 0).all()            # areas re-derived per point (real SRAM model)
    assert df["area_um2"].tolist() == pytest.approx((df["area_DRAM_um2"] + df["area_GLB_um2"] + df["area_mac_um2"]).tolist())
    for f in ("sweep.csv", "sweep.json", "pareto.csv", "line_arch.GLB.depth.png", "pareto.png", "sweep.log"):
        assert (tmp_path / "out" / f).stat().st_size > 0, f
    pareto = pd.read_csv(tmp_path / "out" / "pareto.csv")
    assert len(pareto) == int(df["pareto"].sum()) >= 1

    # Real SRAM prices: the same sweep re-derives GLB energies per point (they grow with depth).
    real = sweep(_spec(tmp_path, name="real.yaml"), "toy", {"arch.GLB.depth": depths}, graph=_graph(), objective="energy",
                 search_options={"mode": "exhaustive"}, cache=tmp_path / "c.sqlite")
    glb_read = [load_spec(tmp_path / "real.yaml").with_overrides({"arch.GLB.depth": d}).ert.energy("system.GLB", "GLB", "read")
                for d in depths]
    assert (np.diff(glb_read) > 0).all() and (real["energy_GLB_pJ"] > 0).all()


# ---- (b) BitVert sub-group size --------------------------------------------------------------
TABLE_IV = {4: (786.5, 0.47), 8: (739.6, 0.45), 16: (971.5, 0.53)}  # sub-group: (PE um^2, PE mW), with optimization


@pytest.fixture(scope="module")
def bitvert_sub_group_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, str]:
    """bbs_bitvert.txt Table IV (with optimization): sub-group 4 / 8 / 16 -> PE area 786.5 / 739.6 /
    971.5 um^2, power 0.47 / 0.45 / 0.53 mW; one sweep over pe.sub_group on a small model."""
    spec = load_spec(BITVERT_SPEC)
    g = _graph((64, 16, 64), (32, 16, 64))
    df = sweep(spec, "toy", {"pe.sub_group": list(TABLE_IV)}, graph=g, search_options=FAST,
               cache=tmp_path_factory.mktemp("sg") / "c.sqlite")
    assert (df["status"] == "ok").all()
    return df.set_index("pe.sub_group"), spec.arch.compute.name


def _order(values: dict[int, float]) -> list[int]:
    return sorted(values, key=values.get)


def test_bitvert_sub_group_sweep_power_ordering_matches_table_iv(bitvert_sub_group_sweep: tuple[pd.DataFrame, str]) -> None:
    by_sg, pe = bitvert_sub_group_sweep
    model = {sg: float(by_sg.loc[sg, f"power_{pe}_mW"]) for sg in TABLE_IV}
    assert _order(model) == _order({sg: v[1] for sg, v in TABLE_IV.items()}), model


def test_bitvert_sub_group_sweep_area_ordering_matches_table_iv(bitvert_sub_group_sweep: tuple[pd.DataFrame, str]) -> None:
    by_sg, pe = bitvert_sub_group_sweep
    model = {sg: float(by_sg.loc[sg, f"area_{pe}_um2"]) for sg in TABLE_IV}
    assert _order(model) == _order({sg: v[0] for sg, v in TABLE_IV.items()}), model


@pytest.mark.parametrize("column,index", [("area_{}_um2", 0), ("power_{}_mW", 1)])
def test_bitvert_sub_group_sweep_ratios_match_table_iv(bitvert_sub_group_sweep: tuple[pd.DataFrame, str],
                                                        column: str, index: int) -> None:
    """The whole compute level (lanes plus scheduler and generator shares) scales with the sub-group
    size like Table IV's PE: each point relative to sub-group 8 within 10% of the paper's ratio
    (area 1.063 / 1.314, power 1.044 / 1.178 for sub-groups 4 / 16)."""
    by_sg, pe = bitvert_sub_group_sweep
    model = {sg: float(by_sg.loc[sg, column.format(pe)]) for sg in TABLE_IV}
    for sg in (4, 16):
        paper_ratio = TABLE_IV[sg][index] / TABLE_IV[8][index]
        assert model[sg] / model[8] == pytest.approx(paper_ratio, rel=0.10), (sg, model)


# ---- (c) Dask ------------------------------------------------------------------------------
def test_dask_local_cluster_gives_the_local_table(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed", reason="extra bitloop[dask] not installed")
    spec = _spec(tmp_path)
    params = {"arch.GLB.depth": [16, 256], "clock_MHz": [100, 400]}
    local = sweep(spec, "toy", params, graph=_graph(), search_options=FAST, cache=tmp_path / "local.sqlite")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = sweep(spec, "toy", params, graph=_graph(), search_options=FAST, cache=tmp_path / "dask.sqlite", dask=client)
    assert not remote["cached"].any() and len(remote) == 4
    pd.testing.assert_frame_equal(_metrics(local), _metrics(remote))


# ---- (d) kill and resume --------------------------------------------------------------------
def _sweep_rows(db: Path) -> dict[str, float]:
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return dict(con.execute("SELECT key, created FROM results WHERE kind = 'sweep'").fetchall())
    except sqlite3.OperationalError:  # the table is not created yet
        return {}


def _log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_killed_sweep_resumes_without_recomputing_or_losing_points(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    model = tmp_path / "tiny_gpt2.json"
    model.write_text(json.dumps(TINY_GPT2))
    out, cache_dir = tmp_path / "out", tmp_path / "cache"
    depths = [8, 16, 32, 64, 128, 256]
    args = ["sweep", "--spec", str(spec), "--model", str(model), "--seq-len", "4", "--objective", "energy",
            "--param", f"arch.GLB.depth={','.join(map(str, depths))}", "--max-evaluations", "1500", "--jobs", "2",
            "--out", str(out)]
    env = {**os.environ, "BITLOOP_CACHE_DIR": str(cache_dir), "PYTHONPATH": str(REPO)}
    db = cache_dir / "results.sqlite"

    proc = subprocess.Popen([sys.executable, "-m", "mapper", *args], cwd=REPO, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(_sweep_rows(db)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, f"the sweep ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    os.killpg(proc.pid, signal.SIGKILL)          # the CLI process and its worker processes
    proc.wait()
    proc.stderr.close()
    before = _sweep_rows(db)
    log1 = _log(out / "sweep.log")
    assert 2 <= len(before) < len(depths) and not (out / "sweep.csv").exists()
    computed1 = [e["key"] for e in log1 if e["event"] == "computed"]
    assert set(computed1) <= set(before)          # logged only after the commit

    assert main(args) == 0                       # the same command again (BITLOOP_CACHE_DIR = cache_dir)
    after = _sweep_rows(db)
    log2 = _log(out / "sweep.log")[len(log1):]
    computed2 = [e["key"] for e in log2 if e["event"] == "computed"]
    assert {e["key"] for e in log2 if e["event"] == "cached"} == set(before)
    assert not set(computed2) & set(before)                       # no finished point computed again
    computed = computed1 + computed2
    assert len(computed) == len(set(computed))                    # none computed twice
    assert set(after) == set(before) | set(computed2) and len(after) == len(depths)   # none lost
    assert all(after[k] == before[k] for k in before)             # committed rows untouched
    table = pd.read_csv(out / "sweep.csv")
    assert table["arch.GLB.depth"].tolist() == depths and (table["status"] == "ok").all()
    assert int(table["cached"].sum()) == len(before)
