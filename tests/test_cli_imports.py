"""Cold start: building the CLI and evaluating one mapping import nothing heavy (run in a fresh
interpreter, so earlier tests' imports do not count)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "pandas", "matplotlib")


def _imported_after(code: str) -> set[str]:
    probe = code + "\nimport sys\nprint(' '.join(sorted(m for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_building_the_parser_imports_no_heavy_package() -> None:
    mods = _imported_after("import mapper.cli\nmapper.cli.build_parser()")
    assert not mods & set(HEAVY), mods & set(HEAVY)
    assert "networkx" not in mods and "mapper.model" not in mods


def test_model_verb_imports_no_heavy_package() -> None:
    ex = "specs/examples/gemm_ws/"
    mods = _imported_after(
        "from mapper.cli import main\n"
        f"main(['model', '--arch', '{ex}arch.yaml', '--problem', '{ex}problem.yaml', '--mapping', '{ex}mapping_ws.yaml',"
        f" '--ert', '{ex}ERT.yaml', '--json'])")
    assert not mods & set(HEAVY + ("networkx",)), mods & set(HEAVY + ("networkx",))


def test_search_on_measured_profiles_imports_no_heavy_package(tmp_path: Path) -> None:
    """The README's search (bundled measured profiles, a bit-slice spec) needs no torch: the
    quantizers load only for real tensors or a synthetic profile."""
    mods = _imported_after(
        "import os\n"
        f"os.environ['BITLOOP_CACHE_DIR'] = {str(tmp_path / 'cache')!r}\n"
        "from mapper.cli import main\n"
        "main(['search', '--spec', 'panacea', '--model', 'gpt2', '--seq-len', '16', '--jobs', '1',"
        f" '--max-evaluations', '300', '--out', {str(tmp_path / 'out')!r}])")
    assert not mods & set(HEAVY), mods & set(HEAVY)
