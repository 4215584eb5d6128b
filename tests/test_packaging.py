"""Packaging: a wheel built from the checkout, installed (not editable) into a fresh virtual
environment, runs `bitloop search --spec panacea --model gpt2` from an unrelated folder with the
bundled specs; `bitloop --version` and `python -m mapper` work; every third-party import of the
packages is a declared dependency.

The venv sees the system site-packages (so torch is not downloaded) and is created without
pip; the wheel is installed by this interpreter's pip (``pip --python``), offline.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("components", "mapper", "sparsity_models", "workloads", "specs")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from a copy of the checkout (the build never writes into the checkout)."""
    root = tmp_path_factory.mktemp("build")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for package in PACKAGES:
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w",
          str(root / "dist"), str(src)], cwd=root)
    (found,) = (root / "dist").glob("bitloop-*.whl")
    return found


def test_wheel_contents_and_metadata(wheel: Path) -> None:
    from workloads.provenance import __version__

    names = zipfile.ZipFile(wheel).namelist()
    bundled = {Path(n).stem for n in names if n.startswith("specs/") and n.endswith(".yaml")}
    on_disk = {p.stem for p in (REPO / "specs").rglob("*.yaml")}
    assert bundled == on_disk and "specs/__init__.py" in names
    assert any(n.startswith("components/library/") for n in names) and any(n.startswith("workloads/configs/") for n in names)
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert f"Version: {__version__}" in meta
    entry = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert re.search(r"^bitloop = mapper\.cli:main$", entry, re.M)


def _third_party_imports() -> set[str]:
    """Top-level modules imported anywhere in the packages, minus the standard library and bitloop."""
    found: set[str] = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    found.update(a.name.split(".")[0] for a in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - set(PACKAGES)


def test_every_import_is_a_declared_dependency(wheel: Path) -> None:
    meta = zipfile.ZipFile(wheel).read(next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith("METADATA"))).decode()
    declared = {re.split(r"[\s\[<>=!~;]", line.split(":", 1)[1].strip())[0].lower().replace("_", "-")
                for line in meta.splitlines() if line.startswith("Requires-Dist:")}
    owners = importlib.metadata.packages_distributions()
    missing = {}
    for module in sorted(_third_party_imports()):
        dists = {d.lower().replace("_", "-") for d in owners.get(module, [module])}
        if not dists & declared:
            missing[module] = sorted(dists)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
    assert {"scipy", "transformers", "torch", "pyyaml"} <= declared


@pytest.mark.slow
def test_installed_wheel_runs_from_any_folder(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], cwd=tmp_path)
    python, bitloop = venv / "bin" / "python", venv / "bin" / "bitloop"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
         cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["BITLOOP_CACHE_DIR"] = str(tmp_path / "cache")

    where = _run([str(python), "-c", "import mapper, specs; print(mapper.__file__); print(specs.__file__)"], elsewhere, env)
    site = str(venv / "lib")
    assert all(line.startswith(site) for line in where.stdout.split()), where.stdout   # the installed copy, not the checkout
    from workloads.provenance import __version__

    assert _run([str(bitloop), "--version"], elsewhere, env).stdout.strip() == f"bitloop {__version__}"
    assert _run([str(python), "-m", "mapper", "--version"], elsewhere, env).stdout.strip() == f"bitloop {__version__}"

    _run([str(bitloop), "search", "--spec", "panacea", "--model", "gpt2", "--seq-len", "8", "--max-evaluations", "200",
          "--jobs", "1", "--out", "out"], elsewhere, env)
    summary = json.loads((elsewhere / "out" / "summary.json").read_text())
    assert summary["spec"] == "panacea" and summary["layers"] > 0 and summary["energy_pJ"] > 0
    meta = summary["bitloop"]
    assert meta["version"] == __version__ and meta["command"].startswith("bitloop search --spec panacea")
    assert meta["inputs"]["spec"]["file"].startswith(site)          # the bundled spec, found as package data
    mode = (elsewhere / "out" / "summary.json").stat().st_mode & 0o777
    assert mode == 0o666 & ~_umask()
    assert not (elsewhere / "specs").exists()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
