"""Where the read-only shared data is: CACTI's SRAM table, the Timeloop conformance cases and
the timeloop-mapper cases.

CI checks the repository out beside it (``../shared``); ``$BITLOOP_SHARED`` overrides, and a
``shared/`` folder beside one of the checkout's parent folders is found too (the rule of
``components.estimators.sram_fit.default_cacti_path``). Tests that need it FAIL when it is
missing -- it is part of CI, so a silent skip would hide dozens of checks.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MISSING = "<shared data missing>"


def _root() -> Path | None:
    if os.environ.get("BITLOOP_SHARED"):
        return Path(os.environ["BITLOOP_SHARED"])
    return next((p / "shared" for p in REPO.parents if (p / "shared").is_dir()), None)


SHARED = _root()


def shared_path(*parts: str) -> Path:
    """``SHARED / parts``; fails the calling test (never skips) when it does not exist."""
    path = SHARED.joinpath(*parts) if SHARED is not None else None
    if path is None or not path.exists():
        pytest.fail(f"shared data {'/'.join(parts)} not found (looked in {SHARED}): CI checks ../shared out beside "
                    f"the repository; elsewhere set BITLOOP_SHARED")
    return path


def case_names(folder: str, marker: str) -> list[str]:
    """Sub-folders of ``SHARED/folder`` holding ``marker``, for parametrize; when the folder is
    missing, one placeholder so that the parametrized tests run and fail instead of being
    collected as an empty (skipped) parameter set."""
    root = SHARED / folder if SHARED is not None else None
    if root is None or not root.is_dir():
        return [MISSING]
    return sorted(p.name for p in root.iterdir() if (p / marker).exists())
