"""Sweep throughput: points per minute for a 27-point (3 x 3 x 3) sweep of GPT-2 prefill on 2 cores.

    python benchmarks/bench_sweep.py [--jobs 2] [--seq-len 256] [--dask local]

The SA-WS baseline (specs/baselines/sa_ws.yaml) is swept over global-buffer depth, DRAM
bandwidth and clock; every point re-derives the spec's energies/areas and re-maps all
unique GPT-2 layers (default search budget) from a cold cache in a temporary folder.
Printed: wall time, points per minute, and the fastest/slowest point.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from mapper.sweep import sweep  # noqa: E402

PARAMS = {
    "arch.GLB.depth": [6144, 12288, 24576],            # 96, 192, 384 KB
    "arch.DRAM.shared_bandwidth": [4, 8, 16],          # bytes per cycle
    "clock_MHz": [400, 500, 600],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--dask", default=None, help="'local' or a scheduler address (default: local processes)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        df = sweep("specs/baselines/sa_ws.yaml", "gpt2", PARAMS, phase="prefill", seq_len=args.seq_len, jobs=args.jobs,
                   dask=args.dask, cache=os.path.join(tmp, "results.sqlite"), out=os.path.join(tmp, "out"))
        wall = time.perf_counter() - start
    n = len(df)
    assert n == 27 and not df["cached"].any() and (df["status"] == "ok").all()
    print(f"GPT-2 prefill (seq_len {args.seq_len}) on sa_ws: {n} points, {args.jobs} workers"
          f"{' (dask ' + args.dask + ')' if args.dask else ''}, cold cache")
    print(f"wall {wall:.1f} s; per point {df['compute_s'].min():.1f}-{df['compute_s'].max():.1f} s "
          f"(mean {df['compute_s'].mean():.1f} s of one worker)")
    print(f"throughput: {60 * n / wall:.1f} points/minute")
    print(f"Pareto front (energy_pJ, cycles): {int(df['pareto'].sum())} points")


if __name__ == "__main__":
    main()
