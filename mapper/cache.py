"""On-disk result cache (SQLite): finished layer searches and sweep points survive interruption.

Each result is committed on its own as soon as it is known, so a killed run loses nothing
that finished and resumes by looking results up. Keys are content hashes of everything
that changes a result (spec, problem, statistics, search settings, bitloop version).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

CACHE_VERSION = "bitloop-3"  # bump when a cached result would change (3: the search of issue 15)


def default_cache_path() -> Path:
    """``$BITLOOP_CACHE_DIR/results.sqlite`` or ``.bitloop_cache/results.sqlite`` in the working folder."""
    return Path(os.environ.get("BITLOOP_CACHE_DIR", ".bitloop_cache")) / "results.sqlite"


def cache_key(*parts: Any) -> str:
    """Stable hash of JSON-serializable parts."""
    text = json.dumps([CACHE_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ResultCache:
    """A key -> JSON value store in one SQLite file, safe for several processes."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, kind TEXT, value TEXT, created REAL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def get(self, key: str) -> Any | None:
        with self._connect() as db:
            row = db.execute("SELECT value FROM results WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Any, kind: str = "layer") -> None:
        """Store one result (committed immediately; an existing key is replaced)."""
        text = json.dumps(value)
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)", (key, kind, text, time.time()))

    def count(self, kind: str | None = None) -> int:
        with self._connect() as db:
            if kind is None:
                return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            return db.execute("SELECT COUNT(*) FROM results WHERE kind = ?", (kind,)).fetchone()[0]
