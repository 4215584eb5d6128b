"""Make the checkout's packages and the test helpers (``oracle``) importable without an install."""

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parent
for _path in (_TESTS.parent, _TESTS):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import pytest  # noqa: E402

from shared_data import shared_path  # noqa: E402


@pytest.fixture
def conformance_dir() -> Path:
    """../shared/timeloop_conformance; the test fails (not skips) without it."""
    return shared_path("timeloop_conformance")


@pytest.fixture
def mapper_cases_dir() -> Path:
    """../shared/mapper_cases; the test fails (not skips) without it."""
    return shared_path("mapper_cases")
