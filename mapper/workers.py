"""Worker processes for layer searches and sweep points.

Pools use the ``forkserver`` start method: workers are forked from a clean server process,
never from a parent that may already run torch's thread pools (forking those deadlocks).
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A process pool of ``workers`` fresh Python processes."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver"))
