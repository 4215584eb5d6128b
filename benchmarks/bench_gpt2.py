"""`search --model gpt2` (256-token prefill) cold and from the cache, for every bundled spec.

    python benchmarks/bench_gpt2.py [--specs sa_ws bitvert ...] [--jobs 1] [--out]

Cold: fresh result and statistics caches; warm: the same command again (every layer's search cached).
Each run is a separate `python -m mapper search` process, as a user would run it (``--out``:
writing every output file too). Printed: wall seconds and CPU seconds (user + system of the
process and its workers), which on a shared machine is the steadier figure; with ``--jobs 1``
CPU seconds are what a quiet single core would take.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPECS = Path(__file__).resolve().parents[1] / "specs"


def run(spec: Path, cache: Path, out: Path | None, jobs: int) -> tuple[float, float]:
    """Wall and CPU seconds of one `search` process; raises RuntimeError with its stderr if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    env = {**os.environ, "BITLOOP_CACHE_DIR": str(cache.parent / "stats")}  # statistics cache cold too
    cmd = [sys.executable, "-m", "mapper", "search", "--spec", str(spec), "--model", "gpt2", "--seq-len", "256",
           "--jobs", str(jobs), "--cache", str(cache)] + (["--out", str(out)] if out else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return time.perf_counter() - start, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--specs", nargs="*", help="spec names or paths (default: every bundled spec)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", action="store_true", help="also write the output files (--out DIR)")
    args = ap.parse_args()
    specs = [Path(s) if s.endswith(".yaml") else next(SPECS.rglob(f"{s}.yaml")) for s in args.specs] if args.specs else \
        sorted(p for p in SPECS.rglob("*.yaml") if "examples" not in p.parts)
    print(f"{'spec':<28} {'cold s':>8} {'cold CPU s':>10} {'cached s':>9} {'cached CPU s':>12}")
    for spec in specs:
        with tempfile.TemporaryDirectory() as tmp:
            cache, out = Path(tmp) / "cache.sqlite", (Path(tmp) / "out" if args.out else None)
            try:
                cold = run(spec, cache, out, args.jobs)
                warm = run(spec, cache, out, args.jobs)
            except RuntimeError as exc:
                print(f"{spec.stem:<28} FAILED: {exc}")
                continue
        print(f"{spec.stem:<28} {cold[0]:>8.2f} {cold[1]:>10.2f} {warm[0]:>9.2f} {warm[1]:>12.2f}", flush=True)


if __name__ == "__main__":
    main()
