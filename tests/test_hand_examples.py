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
    # Timeloop nest (outer -> inner): GLB temporal K4 | GLB spatial M4 over PEs | RF temporal N2 | MAC.
    # Timeloop evaluates K at iterations 0 and 1 only; the call for K=1 stands for the 3 increments.
    r = _run("mapping_ws.yaml")
    # RF keeps Weights only; its tile is one weight (M1 x K1). First call: the whole tile (1);
    # each K increment moves it by 1 along K with no overlap: 3 more -> 4 fills per PE, 16 in all.
    # The MAC reads its weight every step: 4 (K) x 2 (N) = 8 reads per PE, 32 in all.
    assert _counts(r, "RF", "Weights") == (32, 16, 0)
    # GLB Weights: the 4 PEs' deltas sit at distinct M offsets (no multicast): 4 x 4 = 16 reads.
    # Its tile (4x4) comes once from DRAM: 16 fills.
    assert _counts(r, "GLB", "Weights") == (16, 16, 0)
    # Inputs bypass RF. The RF-shaped tile (K1 x N2 = 2 points) moves along K: 2 + 3 x 2 = 8 points
    # per PE, and all 4 PEs need the same points (Inputs do not depend on M): GLB reads 8, each
    # multicast to 4. RF is bypassed, so the GLB serves what RF would have served: the MACs read
    # 8 x 4 = 32 points, i.e. 32 / (8 x 4) = 1 x the GLB's accesses -> 8 reads.
    assert _counts(r, "GLB", "Inputs") == (8, 8, 0)
    assert r["levels"]["GLB"]["dataspaces"]["Inputs"]["multicast"] == 4.0
    # Outputs bypass RF. RF-shaped tile M1 x N2 = 2 points; K does not index Outputs, so K
    # increments bring nothing: 2 per PE, at 4 distinct offsets -> 8 GLB accesses. Masking RF
    # scales them to what the MACs do: 8 updates per PE x 4 PEs / 8 = 4 -> 32 updates.
    # Reads skip the first access of each of the GLB's 8 outputs (its partition): 32 - 8 = 24; a
    # tile leaving for DRAM is not read (no drain read). Fills: DRAM's 8 deltas minus the 8-point
    # partition = 0.
    assert _counts(r, "GLB", "Outputs") == (24, 0, 32)
    # DRAM: everything read once (16 weights, 8 inputs), 8 outputs written back, none read.
    assert _counts(r, "DRAM", "Weights") == (16, 0, 0)
    assert _counts(r, "DRAM", "Inputs") == (8, 0, 0)
    assert _counts(r, "DRAM", "Outputs") == (0, 0, 8)
    # Energy: DRAM vector accesses of 4 words: 16/4 + 8/4 reads, 8/4 updates = 8 x 100 = 800.
    # GLB: reads 16+8+24 = 48 x 10 = 480; fills 16+8 = 24 x 12 = 288; updates 32 x 12 = 384 -> 1152.
    # RF: 32 reads + 16 fills, 1 pJ each -> 48; MACs: 32 x 2 = 64. Total 2064 pJ.
    assert r["energy_pJ"] == pytest.approx(2064.0)
    assert r["levels"]["DRAM"]["energy_pJ"] == pytest.approx(800.0)
    assert r["levels"]["GLB"]["energy_pJ"] == pytest.approx(1152.0)
    assert r["levels"]["RF"]["energy_pJ"] == pytest.approx(48.0)
    # Cycles: 8 compute steps, but the GLB reads 48 words at 2 words/cycle -> 24 cycles.
    assert r["compute_cycles"] == 8
    assert r["cycles"] == 24
    assert r["utilization"] == 1.0


def test_output_stationary() -> None:
    # Nest: GLB temporal N2 | GLB spatial M4 over PEs | RF temporal K4 | MAC.
    r = _run("mapping_os.yaml")
    # RF keeps Outputs only; tile = one output. The N2 loop moves it once: 1 + 1 = 2 deltas per
    # PE, distinct per PE -> GLB Outputs 8 accesses, each PE's share 2. RF partition: the GLB's
    # 8 outputs over its 4 children's 4-output box, times the 1-output tile -> 2.
    # MACs: 8 steps per PE -> 8 updates (32 in all); reads skip the partition: 8 - 2 = 6 per PE
    # (24); fills = share 2 - partition 2 = 0.
    assert _counts(r, "RF", "Outputs") == (24, 0, 32)
    # GLB Outputs: 8 updates; reads 8 - partition 8 = 0; fills: DRAM's 8 minus 8 = 0.
    assert _counts(r, "GLB", "Outputs") == (0, 0, 8)
    # Weights bypass RF: RF-shaped tile M1 x K4 = 4 points, N does not move it -> 4 per PE,
    # 16 GLB accesses; masking RF scales them by the MACs' 8 reads x 4 PEs / 16 = 2 -> 32 reads.
    assert _counts(r, "GLB", "Weights") == (32, 16, 0)
    # Inputs: tile K4 x N1 = 4, moved once along N without overlap -> 8, same for all 4 PEs
    # (multicast 4, 32 delivered); masking scales by 8 x 4 / 32 = 1 -> 8 reads.
    assert _counts(r, "GLB", "Inputs") == (8, 8, 0)
    assert _counts(r, "DRAM", "Outputs") == (0, 0, 8)
    # Energy: DRAM 800 (as for WS); GLB reads 32+8+0 = 40 x 10 = 400, fills 24 x 12 = 288,
    # updates 8 x 12 = 96 -> 784; RF 24 reads + 32 updates (update -> write, 1 pJ) = 56;
    # MACs 64. Total 800 + 784 + 56 + 64 = 1704 pJ.
    assert r["levels"]["GLB"]["energy_pJ"] == pytest.approx(784.0)
    assert r["levels"]["RF"]["energy_pJ"] == pytest.approx(56.0)
    assert r["energy_pJ"] == pytest.approx(1704.0)
    # Cycles: GLB reads 40 words at 2 per cycle = 20 > 8 compute cycles.
    assert r["cycles"] == 20
    # EDP and energy per MAC follow.
    assert r["energy_per_mac_pJ"] == pytest.approx(1704.0 / 32)
    assert r["edp_pJ_cycles"] == pytest.approx(1704.0 * 20)


def test_cli_model_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["model", "--arch", str(EX / "arch.yaml"), "--problem", str(EX / "problem.yaml"),
                 "--mapping", str(EX / "mapping_ws.yaml"), "--ert", str(EX / "ERT.yaml"), "--out", str(tmp_path), "--json"])
    assert code == 0
    data = json.loads((tmp_path / "model.json").read_text())
    assert data["energy_pJ"] == pytest.approx(2064.0)
    assert data["levels"]["GLB"]["dataspaces"]["Weights"]["reads_per_instance"] == 16
    assert data["levels"]["RF"]["dataspaces"]["Weights"]["fills_per_instance"] == 4
    assert json.loads(capsys.readouterr().out)["cycles"] == 24


def test_cli_user_error_exits_2_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "mapping.yaml"
    bad.write_text("mapping:\n- {target: NOPE, type: temporal, factors: M=4}\n")
    code = main(["model", "--arch", str(EX / "arch.yaml"), "--problem", str(EX / "problem.yaml"), "--mapping", str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert str(bad) in err and "mapping[0].target" in err and "unknown level 'NOPE'" in err
