"""Worker processes for layer searches and sweep points.

Pools use the ``forkserver`` start method: workers are forked from a clean server process,
never from a parent that may already run torch's thread pools (forking those deadlocks).

Workers die with the process that started the pool: each runs a watchdog thread that exits
the worker once that process is gone (killed with SIGKILL, say, which runs no clean-up).
The forkserver and multiprocessing's resource tracker then see their last client go and
exit by themselves, so no process of a killed run is left behind.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

WATCHDOG_PERIOD_S = 0.5


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # exists, owned by someone else (cannot be ours: a recycled pid)
        return False
    return True


def _watch_parent(parent_pid: int, parent_start: float | None) -> None:
    """Exit this worker as soon as ``parent_pid`` is gone (or is a recycled pid)."""
    while True:
        time.sleep(WATCHDOG_PERIOD_S)
        if not _alive(parent_pid) or _start_time(parent_pid) != parent_start:
            os._exit(1)


def _start_time(pid: int) -> float | None:
    """Start time of ``pid`` (Linux /proc; None elsewhere), to tell a recycled pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return float(fh.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _init_worker(parent_pid: int, parent_start: float | None) -> None:
    threading.Thread(target=_watch_parent, args=(parent_pid, parent_start), name="bitloop-parent-watchdog",
                     daemon=True).start()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool of ``workers`` fresh Python processes that exit when this process dies."""
    me = os.getpid()
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"),
                               initializer=_init_worker, initargs=(me, _start_time(me)))


_SHARED: dict[int, ProcessPoolExecutor] = {}


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
