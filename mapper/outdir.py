"""Output folders (``--out DIR``): checked before any work, written atomically, cleaned of stale files.

:class:`OutputDir` is created before a verb starts computing, so an ``--out`` that is a file,
cannot be created or is not writable fails at once with a one-line error instead of after a
long search. Files are written atomically and recorded; :meth:`OutputDir.finish` then deletes
what an earlier run wrote there and this run did not (listed in the hidden manifest
``.bitloop_outputs.json``), and anything in the folders the verb owns (``mappings/``,
``stats/``) that this run did not write, so an output folder never mixes two runs.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from workloads.yamlio import InputError, write_atomic

MANIFEST = ".bitloop_outputs.json"


class OutputDir:
    """One run's output folder.

    Args:
        path: the folder (created with its parents when missing).
        owned: sub-folders whose whole content belongs to this verb's output.
        option: the option that named the folder, for messages.
    """

    def __init__(self, path: str | os.PathLike, owned: tuple[str, ...] = (), option: str = "--out"):
        self.path = Path(path)
        self.owned = owned
        self.written: set[str] = set()
        if self.path.exists() and not self.path.is_dir():
            raise InputError(self.path, option, "expected an output folder, but a file with this name exists")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".bitloop_probe.", dir=self.path)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise InputError(self.path, option, f"cannot write to the output folder ({exc.strerror or exc})") from None

    def write(self, relative: str | os.PathLike, data: str | bytes) -> Path:
        """Write one file atomically (``relative`` to the folder) and record it."""
        target = self.path / relative
        try:
            write_atomic(target, data)
        except OSError as exc:
            raise InputError(target, None, f"cannot write output file ({exc.strerror or exc})") from None
        self.keep(relative)
        return target

    def keep(self, relative: str | os.PathLike) -> None:
        """Record a file this run wrote by other means (e.g. an append-only log)."""
        self.written.add(Path(relative).as_posix())

    def finish(self) -> list[Path]:
        """Delete stale outputs (see module doc), write the manifest; returns the deleted paths."""
        stale: set[str] = set()
        manifest = self.path / MANIFEST
        try:
            previous = json.loads(manifest.read_text(encoding="utf-8")).get("files", [])
        except (OSError, ValueError, AttributeError):
            previous = []
        stale.update(str(p) for p in previous if isinstance(p, str))
        for sub in self.owned:
            folder = self.path / sub
            if folder.is_dir():
                stale.update(f.relative_to(self.path).as_posix() for f in folder.rglob("*") if f.is_file())
        removed = []
        for rel in sorted(stale - self.written):
            target = (self.path / rel)
            # only files inside the folder, never through '..' in a damaged manifest
            if ".." in Path(rel).parts or Path(rel).is_absolute() or not target.is_file():
                continue
            target.unlink()
            removed.append(target)
        write_atomic(manifest, json.dumps({"files": sorted(self.written)}, indent=1) + "\n")
        return removed
