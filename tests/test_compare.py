"""``mapper compare``: the compare.json contract, normalization, energy split, CLI errors."""

from __future__ import annotations

import json
import math

import pytest

from mapper.cli import main
from mapper.compare import PARTS, compare, format_table, to_dataframe, write_outputs
from mapper.spec import load_spec
from workloads.graph import LayerGraph
from workloads.problem import gemm

ROW_KEYS = {"spec", "model", "phase", "cycles", "energy_pJ", "speedup", "energy_norm", "area_um2"}
OPTIONS = {"mode": "guided", "max_evaluations": 400, "patience": 3, "population": 16, "mutants": 64}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BITLOOP_CACHE_DIR", str(tmp_path / "cache"))


def _tiny_graph(name: str = "tiny", phase: str = "prefill") -> LayerGraph:
    g = LayerGraph(name, {"phase": phase})
    g.add_layer("fc1", gemm(128, 32, 64), "linear")
    g.add_layer("fc2", gemm(64, 32, 128), "linear", inputs=["fc1"])
    return g


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BITLOOP_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        return compare(["baselines/stripes", "bitvert", "baselines/ant"], [_tiny_graph(), _tiny_graph("tiny2")],
                       search_options=OPTIONS)


def test_contract_and_normalization(result):
    assert result["baseline"] == "stripes"
    assert len(result["rows"]) == 6
    for row in result["rows"]:
        assert ROW_KEYS <= set(row)
        assert isinstance(row["cycles"], int) and row["cycles"] > 0
        assert row["area_um2"] > 0
        parts = sum(row[f"energy_{p}_pJ"] for p in PARTS)
        assert parts == pytest.approx(row["energy_pJ"], rel=1e-9)
    for model in ("tiny", "tiny2"):
        rows = {r["spec"]: r for r in result["rows"] if r["model"] == model}
        assert rows["stripes"]["speedup"] == 1.0 and rows["stripes"]["energy_norm"] == 1.0
        for r in rows.values():     # equal clocks: speedup is the cycle ratio
            assert r["speedup"] == pytest.approx(rows["stripes"]["cycles"] / r["cycles"])
            assert r["energy_norm"] == pytest.approx(r["energy_pJ"] / rows["stripes"]["energy_pJ"])
    assert result["geomean"]["stripes"] == {"speedup": 1.0, "energy_norm": 1.0}
    gm = result["geomean"]["bitvert"]["speedup"]
    ups = [r["speedup"] for r in result["rows"] if r["spec"] == "bitvert"]
    assert gm == pytest.approx(math.sqrt(ups[0] * ups[1]))
    assert gm > 1.0                  # BBS skips bit columns that Stripes computes


def test_outputs_and_dataframe(result, tmp_path):
    paths = write_outputs(result, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert set(data) >= {"baseline", "rows"} and data["baseline"] == "stripes"
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["csv"].read_text().splitlines()[0].startswith("spec,model,phase,cycles")
    df = to_dataframe(result)
    assert len(df) == 6 and ROW_KEYS <= set(df.columns)
    text = format_table(result)
    assert "geometric mean" in text and "bitvert" in text


def test_duplicate_spec_names_are_disambiguated():
    spec = load_spec("baselines/sa_ws")
    out = compare([spec, spec.with_overrides({"clock_MHz": 500})], [_tiny_graph()], search_options=OPTIONS)
    labels = [r["spec"] for r in out["rows"]]
    assert len(set(labels)) == 2
    assert out["rows"][1]["speedup"] == pytest.approx(2.0 * out["rows"][0]["cycles"] / out["rows"][1]["cycles"])


def test_cli_bad_spec_path(capsys, tmp_path):
    code = main(["compare", "--specs", str(tmp_path / "missing.yaml"), "baselines/sa_ws", "--model", "gpt2"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("error: ") and "missing.yaml" in err and len(err.splitlines()) == 1


def test_cli_bad_model(capsys):
    code = main(["compare", "--specs", "baselines/sa_ws", "--model", "no-such-model"])
    assert code == 2 and capsys.readouterr().err.startswith("error: ")


def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main(["compare", "--specs", "baselines/sa_ws", "baselines/sa_os", "--model", "minilm-l6",
                 "--max-evaluations", "300", "--jobs", "1", "--out", str(out)])
    assert code == 0
    data = json.loads((out / "compare.json").read_text())
    assert [r["spec"] for r in data["rows"]] == ["sa_ws", "sa_os"]
    assert all(r["model"] == "minilm-l6" and r["phase"] == "prefill" for r in data["rows"])
    assert (out / "compare.png").exists()
    assert "speedup" in capsys.readouterr().out


def test_normalize_area_and_power_scale_a_bigger_copy_back_to_the_baseline(tmp_path):
    """Iso-area / iso-power oracle: a spec whose PE array is a 2x taller copy of the baseline's
    has twice the array area and peak power, so both normalizations scale it back to the
    baseline's 4 x 4 array and it then costs exactly what the baseline costs."""
    from mapper.normalize import array_area_um2, array_peak_power_mW, normalize_specs

    tiny = load_spec("tests/data/tiny_spec.yaml")
    big = tiny.with_overrides({"name": "big", "arch.PE.meshY": 8})
    assert array_area_um2(big) == pytest.approx(2 * array_area_um2(tiny))
    assert array_peak_power_mW(big) == pytest.approx(2 * array_peak_power_mW(tiny))
    for how in ("area", "power"):
        specs, scales = normalize_specs([tiny, big], how)
        assert scales == [1.0, 0.5] and specs[1].arch.compute.instances == tiny.arch.compute.instances
        out = compare([tiny, big], [_tiny_graph()], search_options=OPTIONS, normalize=how)
        base, other = out["rows"]
        assert out["normalize"] == how and other["array_scale"] == 0.5
        assert other["cycles"] == base["cycles"] and other["energy_pJ"] == pytest.approx(base["energy_pJ"])
        assert "iso-" + how in format_table(out)
    plain = compare([tiny, big], [_tiny_graph()], search_options=OPTIONS)
    assert plain["rows"][1]["array_scale"] == 1.0 and plain["rows"][1]["cycles"] < plain["rows"][0]["cycles"]


def test_resize_array_moves_the_spatial_bounds_with_the_mesh():
    """The BitMoD decode shape (64 x 16 PEs): the X bound (output channels) and the Y bounds
    (tokens) of the buffer above the array follow the new mesh; other bounds stay."""
    from mapper.normalize import resize_array

    s = resize_array(load_spec("bitmod"), 64, 16)
    assert s.arch.compute.instances == 64 * 16 * 4
    spatial = next(c for c in s.constraints_raw if c.get("type") == "spatial" and c["target"] == "ABuf")
    assert spatial["factors"].split()[:4] == ["M<=64", "N<=16", "P<=16", "Q<=16"] and "K=1" in spatial["factors"]


def test_cli_normalize_and_layers(tmp_path, capsys):
    code = main(["compare", "--specs", "tests/data/tiny_spec.yaml", "tests/data/tiny_spec.yaml", "--model", "gpt2",
                 "--seq-len", "8", "--layers", "*.mlp.*", "--normalize", "area", "--max-evaluations", "300",
                 "--cache", str(tmp_path / "c.sqlite"), "--jobs", "1", "--out", str(tmp_path / "o")])
    assert code == 0
    data = json.loads((tmp_path / "o" / "compare.json").read_text())
    assert data["normalize"] == "area" and all(r["array_scale"] == 1.0 for r in data["rows"])
    assert data["rows"][0]["macs"] == 12 * 2 * 8 * 768 * 3072     # only the 2 MLP layers of 12 blocks
    assert main(["compare", "--specs", "tests/data/tiny_spec.yaml", "--model", "gpt2", "--layers", "conv"]) == 2
    assert "selects no layer" in capsys.readouterr().err
