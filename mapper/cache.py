"""On-disk result cache (SQLite): finished layer searches and sweep points survive interruption.

Each result is committed on its own as soon as it is known, so a killed run loses nothing
that finished and resumes by looking results up. Keys are digests of everything that
changes a result (:func:`cache_key`: the cache schema, the bitloop build -- version and
code digest -- and the caller's resolved inputs: spec key, problem, statistics digest,
search settings).

A damaged cache never ends a run: an unreadable database file is moved aside (reported on
stderr) and a new one started; a row that does not decode, or that the caller's check
rejects, is deleted and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, Callable

from workloads.provenance import build_id
from workloads.yamlio import InputError

CACHE_SCHEMA = "bitloop-cache-3"   # bump when the layout or meaning of stored values changes


def default_cache_path() -> Path:
    """``$BITLOOP_CACHE_DIR/results.sqlite`` or ``.bitloop_cache/results.sqlite`` in the working folder."""
    return Path(os.environ.get("BITLOOP_CACHE_DIR") or ".bitloop_cache") / "results.sqlite"


def cache_key(*parts: Any) -> str:
    """Digest of the cache schema, the bitloop build and JSON-serializable ``parts``."""
    text = json.dumps([CACHE_SCHEMA, build_id(), *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ResultCache:
    """A key -> JSON value store in one SQLite file, safe for several processes."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path is not None else default_cache_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(self.path, None, f"cannot create the result cache folder ({exc.strerror or exc})") from None
        if self.path.is_dir():
            raise InputError(self.path, None, "the result cache must be a file (--cache FILE), found a folder")
        self._open()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def _open(self) -> None:
        """Create the table; a file that is not a readable database is moved aside first."""
        try:
            self._create()
        except sqlite3.OperationalError as exc:   # cannot open or write it (permissions, a locked file)
            raise InputError(self.path, None, f"cannot open the result cache ({exc})") from None
        except sqlite3.DatabaseError as exc:      # not a database, or a damaged one
            self._move_aside(exc)
            try:
                self._create()
            except sqlite3.Error as again:
                raise InputError(self.path, None, f"cannot open the result cache ({again})") from None

    def _create(self) -> None:
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, kind TEXT, value TEXT, created REAL)")
            db.execute("SELECT COUNT(*) FROM results").fetchone()

    def _move_aside(self, exc: Exception) -> None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{os.getpid()}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{self.path}{suffix}")
            if part.exists():
                os.replace(part, Path(f"{aside}{suffix}"))
        print(f"warning: {self.path}: unreadable result cache ({exc}); moved it to {aside.name} and started "
              "a new one (results are recomputed)", file=sys.stderr)

    def _run(self, action: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``action`` on a connection; a database found damaged mid-run is moved aside, rebuilt, retried."""
        try:
            with self._connect() as db:
                return action(db)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):
                raise
            self._move_aside(exc)
            self._create()
            with self._connect() as db:
                return action(db)

    def get(self, key: str, check: Callable[[Any], bool] | None = None) -> Any | None:
        """The value stored under ``key``, or None. A row that does not decode or fails ``check`` is deleted."""
        row = self._run(lambda db: db.execute("SELECT value FROM results WHERE key = ?", (key,)).fetchone())
        if row is None:
            return None
        try:
            value = json.loads(row[0])
            ok = check is None or bool(check(value))
        except (TypeError, ValueError, KeyError, AttributeError, RecursionError):
            ok = False
        if not ok:
            self._run(lambda db: db.execute("DELETE FROM results WHERE key = ?", (key,)))
            return None
        return value

    def put(self, key: str, value: Any, kind: str = "layer") -> None:
        """Store one result (committed immediately; an existing key is replaced)."""
        text = json.dumps(value)
        self._run(lambda db: db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)", (key, kind, text, time.time())))

    def count(self, kind: str | None = None) -> int:
        if kind is None:
            return self._run(lambda db: db.execute("SELECT COUNT(*) FROM results").fetchone()[0])
        return self._run(lambda db: db.execute("SELECT COUNT(*) FROM results WHERE kind = ?", (kind,)).fetchone()[0])
