"""Progress bars for interactive runs (tqdm on a terminal's stderr, silent otherwise)."""

from __future__ import annotations

import sys
from typing import Any


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def close(self) -> None: ...


def progress_bar(total: int, enabled: bool, desc: str, unit: str) -> Any:
    """A tqdm bar when ``enabled`` and stderr is a terminal, else a no-op with the same methods."""
    if not enabled or total == 0 or not sys.stderr.isatty():
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr)
