"""Disk cache of statistics sections, keyed by a hash of the tensor bytes and the parameters.

Default folder: ``$BITLOOP_CACHE_DIR`` or ``.bitloop_cache/`` in the working directory. Each
entry is one ``.npz`` file (arrays plus a JSON blob for the scalar values) written
atomically; an unreadable entry is ignored and recomputed.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workloads.provenance import __version__, code_digest
from workloads.yamlio import write_atomic

CACHE_VERSION = 4  # bump when a statistic's definition changes


def default_cache_dir() -> Path:
    """``$BITLOOP_CACHE_DIR`` or ``.bitloop_cache``."""
    return Path(os.environ.get("BITLOOP_CACHE_DIR") or ".bitloop_cache")


def tensor_digest(*tensors: torch.Tensor | None) -> str:
    """SHA-256 over dtype, shape and bytes of the tensors (None hashes as a marker)."""
    h = hashlib.sha256()
    for t in tensors:
        if t is None:
            h.update(b"<none>")
            continue
        c = t.detach().contiguous().cpu()
        h.update(f"{c.dtype}:{tuple(c.shape)}".encode())
        h.update(c.view(torch.uint8).numpy().tobytes() if c.numel() else b"")
    return h.hexdigest()


def cache_key(digest: str, section: str, params: dict[str, Any]) -> str:
    """Entry name for one section of one tensor set: a digest of the tensors' digest, the
    section and its parameters, the statistics schema, and the code that computes statistics
    (bitloop version, digest of ``sparsity_models``, torch and numpy versions)."""
    blob = json.dumps([CACHE_VERSION, _stats_build(), digest, section, params], sort_keys=True, default=str)
    return f"{section}-{hashlib.sha256(blob.encode()).hexdigest()[:32]}"


@functools.lru_cache(maxsize=1)
def _stats_build() -> str:
    return f"{__version__}+{code_digest(('sparsity_models',))}+torch-{torch.__version__}+numpy-{np.__version__}"


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


class StatsCache:
    """Load/store section results (dicts of scalars and numpy arrays) under a folder."""

    def __init__(self, directory: str | Path | None = None, enabled: bool = True):
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.enabled = enabled

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.npz"

    def get(self, key: str) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                out: dict[str, Any] = json.loads(bytes(data["__json__"]).decode())
                for name in data.files:
                    if name != "__json__":
                        out[name] = data[name]
            return out
        except Exception:  # noqa: BLE001 - a damaged entry is recomputed
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        if not self.enabled:
            return
        arrays = {k: v for k, v in value.items() if isinstance(v, np.ndarray)}
        scalars = {k: _plain(v) for k, v in value.items() if not isinstance(v, np.ndarray)}
        buf = io.BytesIO()
        np.savez(buf, __json__=np.frombuffer(json.dumps(scalars).encode(), np.uint8), **arrays)
        write_atomic(self._path(key), buf.getvalue())
