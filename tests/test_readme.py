"""The README's first paragraph says where step 1's statistics come from: check it against
what the run actually uses."""

from __future__ import annotations

import re
from pathlib import Path

from mapper.spec import load_spec
from mapper.statistics import layer_statistics, statistics_provenance
from workloads.zoo import build_graph

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_step_one_is_the_command_the_paragraph_describes() -> None:
    assert "python -m mapper search --spec specs/panacea.yaml --model gpt2" in README
    assert "all 72 layers" in README and "256-token prefill" in README
    assert len(build_graph("gpt2", phase="prefill", seq_len=256).names()) == 72


def test_step_one_statistics_come_from_the_profiles_the_readme_names() -> None:
    spec = load_spec(Path(__file__).resolve().parents[1] / "specs" / "panacea.yaml")
    graph = build_graph("gpt2", phase="prefill", seq_len=256)
    stats, roles, settings = layer_statistics(spec, graph, None)
    prov, _ = statistics_provenance(graph, stats, roles, settings)
    assert prov["statistics"] == "measured-profile"
    assert prov["counts"]["weights"]["synthetic"] == 0 and prov["counts"]["inputs"]["synthetic"] == 0
    checkpoints = {source.split("/")[0] for source in prov["profile_sources"]}
    assert checkpoints == {"smollm2", "minilm"}
    assert re.search(r"real quantized tensors of SmolLM2-135M and MiniLM-L6", README.replace("\n", " "))
