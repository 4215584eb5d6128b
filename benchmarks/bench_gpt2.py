"""`search --model gpt2` (256-token prefill) cold and from the cache, for every bundled spec.

    python benchmarks/bench_gpt2.py [--specs sa_ws bitvert ...] [--jobs 2]

Cold: a fresh cache file; warm: the same command again (every layer's search cached).
Each run is a separate `python -m mapper search` process, as a user would run it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPECS = Path(__file__).resolve().parents[1] / "specs"


def run(spec: Path, cache: Path, out: Path, jobs: int) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mapper", "search", "--spec", str(spec), "--model", "gpt2", "--seq-len", "256",
                    "--jobs", str(jobs), "--cache", str(cache), "--out", str(out)], check=True, capture_output=True)
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
            cold = run(spec, cache, out, args.jobs)
            warm = run(spec, cache, out, args.jobs)
        print(f"{spec.stem:<28} {cold:>8.1f} {warm:>9.1f}")


if __name__ == "__main__":
    main()
