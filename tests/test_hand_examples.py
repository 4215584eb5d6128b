"""Hand-worked weight-stationary and output-stationary mappings of one GEMM.

Problem: GEMM M=4, N=2, K=4 (Outputs[M,N] += Weights[M,K] * Inputs[K,N]); 32 MACs.
Arch (specs/examples/gemm_ws): DRAM (block 4 words) / GLB (block 1, read bandwidth 2
words/cycle) / 4 PEs (meshX=4), each a one-word register RF and a MAC.
ERT: DRAM read/write 100 pJ per 4-word access; GLB read 10, write 12, update 12;
RF read 1, write 1 (update falls back to write); MAC 2 pJ.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mapper.arch import load_arch
from mapper.cli import main
from mapper.ert import load_ert
from mapper.mapping import load_mapping
from mapper.model import evaluate
from workloads.problem import load_problem

EX = Path(__file__).resolve().parents[1] / "specs" / "examples" / "gemm_ws"


def _run(mapping_file: str) -> dict:
    arch = load_arch(EX / "arch.yaml")
    problem = load_problem(EX / "problem.yaml")
    mapping = load_mapping(EX / mapping_file, arch, problem)
    return evaluate(problem, arch, mapping, ert=load_ert(EX / "ERT.yaml")).to_dict()


def _counts(result: dict, level: str, ds: str) -> tuple[int, int, int]:
    s = result["levels"][level]["dataspaces"][ds]
    return s["reads"], s["fills"], s["updates"]


def test_weight_stationary() -> None:
    # Nest (outer -> inner): GLB temporal K4 | spatial M4 over PEs | RF temporal N2 | MAC.
    r = _run("mapping_ws.yaml")
    # RF keeps Weights only; its tile is one weight (M1 x K1). The K4 loop above it moves
    # the tile 3 times -> 1 + 3 = 4 fills per PE, 16 in all. Each PE's MAC reads its
    # weight every step: 4 (K) x 2 (N) = 8 steps -> 8 reads per PE, 32 in all.
    assert _counts(r, "RF", "Weights") == (32, 16, 0)
    # GLB Weights: tile 4x4 = 16, filled once. It serves the 4 PEs' distinct weights at
    # the first step and at each of the 3 K steps: 4 + 3*4 = 16 reads (no multicast).
    assert _counts(r, "GLB", "Weights") == (16, 16, 0)
    # Inputs bypass RF, so the GLB feeds the MACs directly: 8 steps, and at each step all
    # 4 PEs need the same input (Inputs do not depend on M) -> 8 reads, multicast 4.
    assert _counts(r, "GLB", "Inputs") == (8, 8, 0)
    assert r["levels"]["GLB"]["dataspaces"]["Inputs"]["multicast"] == 4.0
    # Outputs bypass RF: each step the 4 MACs update 4 distinct outputs: 8*4 = 32 updates.
    # Their read-modify-write reads skip the first touch of each of the 8 outputs:
    # 32 - 8 = 24, plus 8 reads draining the 8-output tile to DRAM -> 32 reads.
    # The GLB's only Outputs tile (4x2) arrives once, all first arrivals -> 0 fills.
    assert _counts(r, "GLB", "Outputs") == (32, 0, 32)
    # DRAM: everything read once (16 weights, 8 inputs), 8 outputs written back, none read.
    assert _counts(r, "DRAM", "Weights") == (16, 0, 0)
    assert _counts(r, "DRAM", "Inputs") == (8, 0, 0)
    assert _counts(r, "DRAM", "Outputs") == (0, 0, 8)
    # Energy: DRAM vector accesses of 4 words: (16+8)/4 = 6 reads, 8/4 = 2 updates -> 8*100 = 800
    # GLB: reads 16+8+32 = 56 * 10 = 560; fills 16+8 = 24 * 12 = 288; updates 32 * 12 = 384 -> 1232
    # RF: 32 reads + 16 fills, 1 pJ each -> 48; MACs: 32 * 2 = 64. Total 2144 pJ.
    assert r["energy_pJ"] == pytest.approx(2144.0)
    assert r["levels"]["DRAM"]["energy_pJ"] == pytest.approx(800.0)
    assert r["levels"]["GLB"]["energy_pJ"] == pytest.approx(1232.0)
    assert r["levels"]["RF"]["energy_pJ"] == pytest.approx(48.0)
    # Cycles: 8 compute steps, but the GLB reads 56 words at 2 words/cycle -> 28 cycles.
    assert r["compute_cycles"] == 8
    assert r["cycles"] == 28
    assert r["utilization"] == 1.0


def test_output_stationary() -> None:
    # Nest: GLB temporal N2 | spatial M4 over PEs | RF temporal K4 | MAC.
    r = _run("mapping_os.yaml")
    # RF keeps Outputs only; tile = one output. The N2 loop above moves it once: 2 arrivals
    # per PE, both first arrivals -> 0 fills; both drained up -> 2 drain reads per PE.
    # MACs: 8 steps per PE, 8 updates each (32 in all); reads skip the first touch of the
    # PE's 2 outputs: 8 - 2 = 6 per PE -> 24, plus 8 drain reads -> 32 reads.
    assert _counts(r, "RF", "Outputs") == (32, 0, 32)
    # GLB Outputs: per step the 4 PEs send 4 distinct outputs: 4 + 1*4 = 8 updates; never
    # re-read (8 arrivals, all first). Its tile (8 outputs) drains to DRAM: 8 reads.
    assert _counts(r, "GLB", "Outputs") == (8, 0, 8)
    # Weights bypass RF: 8 steps x 4 distinct weights across PEs = 32 GLB reads.
    assert _counts(r, "GLB", "Weights") == (32, 16, 0)
    # Inputs: 8 steps, same input for all 4 PEs -> 8 reads (multicast 4).
    assert _counts(r, "GLB", "Inputs") == (8, 8, 0)
    assert _counts(r, "DRAM", "Outputs") == (0, 0, 8)
    # Energy: DRAM 800 (as for WS); GLB reads 32+8+8 = 48*10 = 480, fills 24*12 = 288,
    # updates 8*12 = 96 -> 864; RF 32 reads + 32 updates (update -> write, 1 pJ) = 64;
    # MACs 64. Total 800 + 864 + 64 + 64 = 1792 pJ.
    assert r["levels"]["GLB"]["energy_pJ"] == pytest.approx(864.0)
    assert r["levels"]["RF"]["energy_pJ"] == pytest.approx(64.0)
    assert r["energy_pJ"] == pytest.approx(1792.0)
    # Cycles: GLB reads 48 words at 2 per cycle = 24 > 8 compute cycles.
    assert r["cycles"] == 24
    # EDP and energy per MAC follow.
    assert r["energy_per_mac_pJ"] == pytest.approx(1792.0 / 32)
    assert r["edp_pJ_cycles"] == pytest.approx(1792.0 * 24)


def test_cli_model_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["model", "--arch", str(EX / "arch.yaml"), "--problem", str(EX / "problem.yaml"),
                 "--mapping", str(EX / "mapping_ws.yaml"), "--ert", str(EX / "ERT.yaml"), "--out", str(tmp_path), "--json"])
    assert code == 0
    data = json.loads((tmp_path / "model.json").read_text())
    assert data["energy_pJ"] == pytest.approx(2144.0)
    assert data["levels"]["GLB"]["dataspaces"]["Weights"]["reads_per_instance"] == 16
    assert data["levels"]["RF"]["dataspaces"]["Weights"]["fills_per_instance"] == 4
    assert json.loads(capsys.readouterr().out)["cycles"] == 28


def test_cli_user_error_exits_2_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "mapping.yaml"
    bad.write_text("mapping:\n- {target: NOPE, type: temporal, factors: M=4}\n")
    code = main(["model", "--arch", str(EX / "arch.yaml"), "--problem", str(EX / "problem.yaml"), "--mapping", str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert str(bad) in err and "mapping[0].target" in err and "unknown level 'NOPE'" in err
