"""Running sweep points: serially, on local worker processes, or on a Dask distributed cluster.

Each point is one :func:`compute_point` call (re-map and evaluate the whole model on the
point's spec). The caller's ``on_done`` runs in the calling process as each point finishes,
so results can be committed to the cache one by one.
"""

from __future__ import annotations

import os
import socket
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from typing import Any, Callable

from mapper.cache import ResultCache
from mapper.run import ModelReport, run_model
from mapper.spec import Spec
from mapper.workers import process_pool
from workloads.graph import LayerGraph
from workloads.yamlio import InputError

# Point metrics that every row has (per-part columns are added for each arch level).
METRICS = ("energy_pJ", "cycles", "seconds", "area_um2", "edp_J_s", "energy_area_pJ_um2", "power_mW",
           "energy_per_mac_pJ", "utilization", "macs")


@dataclass
class PointTask:
    """One unique point to compute (points with the same spec key share one task)."""

    key: str
    spec: Spec
    model: str
    graph: LayerGraph
    run_args: dict[str, Any]          # phase, seq_len, batch, kv_len, weights
    objective: Any
    search_options: dict[str, Any]
    cache_path: str | None            # layer-search cache for the worker (None: the worker's default)
    layer_jobs: int = 1               # worker processes for the layer searches of this point


def point_metrics(spec: Spec, report: ModelReport) -> dict[str, Any]:
    """Totals of one point: energy, cycles, time, area, EDP, energy x area, power; energy, area, power by part."""
    s = report.summary()
    seconds = s["seconds"]
    energy = s["energy_pJ"]
    per_mW = 1e-9 / seconds if seconds > 0 else float("nan")   # pJ/s -> mW
    m: dict[str, Any] = {
        "energy_pJ": energy, "cycles": s["cycles"], "seconds": seconds, "area_um2": s["area_um2"],
        "edp_J_s": s["edp_J_s"], "energy_area_pJ_um2": energy * s["area_um2"], "power_mW": energy * per_mW,
        "energy_per_mac_pJ": s["energy_per_mac_pJ"], "utilization": s["utilization"], "macs": s["macs"],
    }
    levels = {l.name: l for l in [*spec.arch.levels, spec.arch.compute]}
    for part in report.parts:
        m[f"energy_{part}_pJ"] = s["energy_breakdown_pJ"][part]
    for part in report.parts:
        lvl = levels[part]
        m[f"area_{part}_um2"] = spec.ert.area(lvl.path, lvl.name) * lvl.instances
    for part in report.parts:
        m[f"power_{part}_mW"] = s["energy_breakdown_pJ"][part] * per_mW
    m["layers"], m["unique_layers"] = s["layers"], s["unique_layers"]
    return m


def compute_point(task: PointTask) -> dict[str, Any]:
    """Map and evaluate the model on the point's spec (runs in a worker).

    A point whose model cannot be mapped (for example a buffer too small for any tile) is
    a result too: status ``infeasible`` with the reason, and no metrics.
    """
    start = time.perf_counter()
    cache = ResultCache(task.cache_path) if task.cache_path else ResultCache()
    try:
        report = run_model(task.spec, task.model, graph=task.graph, objective=task.objective, jobs=task.layer_jobs,
                           cache=cache, search_options=task.search_options, **task.run_args)
    except InputError as exc:
        result: dict[str, Any] = {"status": "infeasible", "error": str(exc)}
    else:
        result = {"status": "ok", "error": "", **point_metrics(task.spec, report)}
    result.update(compute_s=time.perf_counter() - start, computed_at=time.time(),
                  computed_by=f"{socket.gethostname()}:{os.getpid()}")
    return result


OnDone = Callable[[PointTask, dict[str, Any]], None]


def run_tasks(tasks: list[PointTask], on_done: OnDone, jobs: int = 1, dask: Any = None) -> None:
    """Compute every task, calling ``on_done(task, result)`` in this process as each finishes.

    ``dask``: None (local: serial for ``jobs`` <= 1, else ``jobs`` worker processes),
    ``"local"`` (a LocalCluster of ``jobs`` single-threaded workers), a scheduler address
    (``tcp://host:port``) or a ``distributed.Client``.
    """
    if not tasks:
        return
    if dask is not None:
        _run_dask(tasks, on_done, jobs, dask)
    elif jobs > 1 and len(tasks) > 1:
        _run_pool(tasks, on_done, jobs)
    else:
        for task in tasks:
            on_done(task, compute_point(task))


def _run_pool(tasks: list[PointTask], on_done: OnDone, jobs: int) -> None:
    pool = process_pool(min(jobs, len(tasks)))
    try:
        pending = {pool.submit(compute_point, t): t for t in tasks}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                on_done(pending.pop(fut), fut.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def open_client(dask: Any, jobs: int) -> tuple[Any, Callable[[], None]]:
    """A ``distributed.Client`` for ``dask`` and a function that releases what was started here."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - dask is a declared optional dependency
        raise InputError("--dask", str(dask), "dask.distributed is not installed (pip install 'bitloop[dask]')") from None
    if not isinstance(dask, str):
        return dask, lambda: None
    if dask == "local":
        cluster = LocalCluster(n_workers=max(1, jobs), threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)

        def close() -> None:
            client.close()
            cluster.close()
        return client, close
    try:
        client = Client(dask, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError("--dask", dask, f"cannot connect to a Dask scheduler ({exc}); expected 'local' or tcp://HOST:PORT") from None
    return client, client.close


def is_local_cluster(client: Any) -> bool:
    """True when every worker of ``client`` runs on this machine (so they can share the cache file)."""
    here = {"localhost", socket.gethostname()}
    try:
        here.add(socket.gethostbyname(socket.gethostname()))
    except OSError:
        pass
    workers = client.scheduler_info().get("workers", {})
    hosts = {str(w.get("host", "")) for w in workers.values()}
    return bool(hosts) and all(h in here or h.startswith("127.") for h in hosts)


def _run_dask(tasks: list[PointTask], on_done: OnDone, jobs: int, dask: Any) -> None:
    from distributed import as_completed

    client, close = open_client(dask, jobs)
    try:
        if not is_local_cluster(client):
            # Remote workers cannot open this machine's cache file; they keep layer searches in their own.
            tasks_to_send = [PointTask(**{**t.__dict__, "cache_path": None}) for t in tasks]
        else:
            tasks_to_send = tasks
        futures = {client.submit(compute_point, sent, pure=False): t
                   for sent, t in zip(tasks_to_send, tasks)}
        try:
            for fut in as_completed(list(futures)):
                on_done(futures[fut], fut.result())
        except BaseException:
            client.cancel(list(futures))
            raise
    finally:
        close()


__all__ = ["METRICS", "PointTask", "compute_point", "open_client", "point_metrics", "run_tasks"]
