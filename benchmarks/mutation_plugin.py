"""pytest plugin loaded by benchmarks/mutation.py for mutation runs only (``-p mutation_plugin``).

mutmut forks every mutant's test run from a process that has already run the tests once, so
whatever that run left in memory or on disk is inherited. Two kinds of state would hide
mutants and one would only cost time:

* production caches of computed values (the nest analysis's mesh tables, the calibration's
  design columns, the estimators' loaded tables) would hand the mutated code a result the
  original code computed: they are cleared before every test;
* the on-disk result and statistics caches are keyed by the code digest, which mutmut's
  trampolines leave unchanged between mutants: every test gets an empty cache folder;
* the test oracles (tests/oracle.py, tests/timeloop_oracle.py) do not depend on the mutated
  code, so their results are memoized: the forked runs reuse what the first run computed.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import pytest

MUTATED_PREFIXES = ("mapper.nest", "mapper.model", "components.estimators", "components.calibrate",
                    "sparsity_models.stats")


def _memoized(fn: Any) -> Any:
    if getattr(fn, "memoized", False):
        return fn
    memo: dict[str, Any] = {}

    def wrapper(*args: Any) -> Any:
        key = repr(args)
        if key not in memo:
            memo[key] = fn(*args)
        return copy.deepcopy(memo[key])

    wrapper.__name__, wrapper.__doc__, wrapper.memoized = fn.__name__, fn.__doc__, True  # type: ignore[attr-defined]
    return wrapper


def pytest_configure(config: pytest.Config) -> None:
    """Memoize the oracles before the test modules import them by name (pytest runs in the copy's
    ``mutants/`` folder, whose tests/ holds them)."""
    tests = str(Path.cwd() / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import oracle
    import timeloop_oracle

    oracle.walk = _memoized(oracle.walk)
    timeloop_oracle.timeloop_walk = _memoized(timeloop_oracle.timeloop_walk)


@pytest.fixture(autouse=True)
def _fresh_state(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BITLOOP_CACHE_DIR", str(tmp_path / "cache"))
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(MUTATED_PREFIXES):
            continue
        for attr in list(vars(module).values()):
            if callable(getattr(attr, "cache_clear", None)):
                attr.cache_clear()
        for cache in ("_TABLES", "_COLUMN_CACHE"):
            if isinstance(getattr(module, cache, None), dict):
                getattr(module, cache).clear()
