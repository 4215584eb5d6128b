"""`search --model gpt2` (256-token prefill) cold and from the cache, for every bundled spec.

    python benchmarks/bench_gpt2.py [--specs sa_ws bitvert ...] [--jobs 2]

Cold: fresh result and statistics caches; warm: the same command again (every layer's search cached).
Each run is a separate `python -m mapper search` process, as a user would run it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPECS = Path(__file__).resolve().parents[1] / "specs"


def run(spec: Path, cache: Path, out: Path, jobs: int) -> float:
    """Wall seconds of one `search` process; raises RuntimeError with its stderr if it fails."""
    start = time.perf_counter()
    env = {**os.environ, "BITLOOP_CACHE_DIR": str(cache.parent / "stats")}  # statistics cache cold too
    proc = subprocess.run([sys.executable, "-m", "mapper", "search", "--spec", str(spec), "--model", "gpt2", "--seq-len", "256",
                           "--jobs", str(jobs), "--cache", str(cache), "--out", str(out)], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}")
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--specs", nargs="*", help="spec names or paths (default: every bundled spec)")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    specs = [Path(s) if s.endswith(".yaml") else next(SPECS.rglob(f"{s}.yaml")) for s in args.specs] if args.specs else \
        sorted(p for p in SPECS.rglob("*.yaml") if "examples" not in p.parts)
    print(f"{'spec':<28} {'cold s':>8} {'cached s':>9}")
    for spec in specs:
        with tempfile.TemporaryDirectory() as tmp:
            cache, out = Path(tmp) / "cache.sqlite", Path(tmp) / "out"
            try:
                cold = run(spec, cache, out, args.jobs)
                warm = run(spec, cache, out, args.jobs)
            except RuntimeError as exc:
                print(f"{spec.stem:<28} FAILED: {exc}")
                continue
        print(f"{spec.stem:<28} {cold:>8.1f} {warm:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
