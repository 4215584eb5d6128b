"""What produced a result: the bitloop version, a digest of the installed code, the command
line, and content digests of input files.

Cache keys and output files use these so that a result is reused only when everything it
depends on is unchanged, and so that an output says which code and inputs made it. Lives in
``workloads`` (the lowest package) so that every package can use it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
import sys
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator

__version__ = "0.1.0"

# The packages whose code and data (library YAML, estimator CSVs, model configs) make results.
PACKAGES = ("components", "mapper", "sparsity_models", "workloads")
_CODE_SUFFIXES = (".py", ".yaml", ".yml", ".csv", ".txt", ".json")


@lru_cache(maxsize=4)
def code_digest(packages: tuple[str, ...] = PACKAGES) -> str:
    """SHA-256 (16 hex digits) over the source and data files of bitloop's ``packages``.

    Part of every cache key, so a result computed by other code (an upgrade, a local
    edit) is never reused. Computed once per process (~100 small files).
    """
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(__version__.encode())
    for package in packages:
        base = root / package
        for path in sorted(base.rglob("*")):
            if path.suffix in _CODE_SUFFIXES and "__pycache__" not in path.parts and path.is_file():
                h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def canonical(value: Any) -> Any:
    """``value`` as plain JSON data in a canonical form (dataclasses as dicts, sets sorted, floats exact)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__type__": type(value).__name__,
                **{f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (set, frozenset)):
        return sorted((canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, float):
        return repr(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "tolist"):
        return canonical(value.tolist())
    return str(value)


def digest(*parts: Any) -> str:
    """SHA-256 (hex) of the canonical JSON of ``parts``."""
    return hashlib.sha256(json.dumps(canonical(list(parts)), sort_keys=True).encode()).hexdigest()


def build_id() -> str:
    """``VERSION+CODEDIGEST+numpy-V``: the version, the exact code and the numerics library
    that compute results."""
    from importlib.metadata import version

    return f"{__version__}+{code_digest()}+numpy-{version('numpy')}"


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 (16 hex digits) of a file's bytes; of a folder's files (names and bytes, sorted)."""
    p = Path(path)
    h = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        h.update(str(f.relative_to(p) if p.is_dir() else f.name).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def path_identity(path: str | os.PathLike) -> str:
    """Fast identity (16 hex digits) of a file or folder: names, sizes and modification times
    of its files. Used for large inputs such as checkpoints, where hashing every byte on each
    run would cost seconds; any rewrite of a file changes its size or time."""
    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(p) if p.is_dir() else f.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()[:16]


_COMMAND: list[str] | None = None     # set by the CLI while a verb runs


@contextmanager
def running_command(argv: Iterable[str]) -> Iterator[None]:
    """Record ``argv`` as the command being run (the CLI wraps each verb in this)."""
    global _COMMAND
    old, _COMMAND = _COMMAND, [str(a) for a in argv]
    try:
        yield
    finally:
        _COMMAND = old


def command_line() -> str:
    """The command being run (shell-quoted), e.g. ``bitloop search --spec panacea --model gpt2``;
    outside the CLI, this process's ``sys.argv``."""
    if _COMMAND is not None:
        return shlex.join(_COMMAND)
    args = list(sys.argv)
    if args:
        args[0] = Path(args[0]).name
    return shlex.join(args)


def run_metadata(inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``bitloop`` block of output files: version, code digest, command line, input digests."""
    return {"version": __version__, "code_digest": code_digest(), "command": command_line(),
            "inputs": dict(inputs or {})}


__all__ = ["PACKAGES", "__version__", "build_id", "canonical", "code_digest", "digest", "command_line", "file_digest", "path_identity", "run_metadata",
           "running_command"]
