"""Worker processes for layer searches and sweep points.

Pools use the ``forkserver`` start method: workers are forked from a clean server process,
never from a parent that may already run torch's thread pools (forking those deadlocks).
"""

from __future__ import annotations

import atexit
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

_SHARED: dict[int, ProcessPoolExecutor] = {}


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool of ``workers`` fresh Python processes."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"))


def shared_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool of ``workers`` processes kept for the rest of the run: a whole-model run
    called many times (compare, reproduce) pays the workers' start-up and imports (torch for
    statistics) once, and their in-memory caches (synthetic statistics) carry over."""
    pool = _SHARED.get(workers)
    if pool is None or getattr(pool, "_broken", False):
        pool = _SHARED[workers] = process_pool(workers)
    return pool


@atexit.register
def _shutdown_shared() -> None:
    for pool in _SHARED.values():
        pool.shutdown(cancel_futures=True)
    _SHARED.clear()
