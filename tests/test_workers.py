"""Worker processes die with their parent: after SIGKILL of a running `search` (which runs no
clean-up), no worker, forkserver or resource-tracker process of it survives for long."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _group(pgid: int, exclude: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid`` other than ``exclude`` (Linux /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == exclude:
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            out.append(int(entry))
    return out


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_no_orphans_after_the_parent_is_killed(tmp_path: Path) -> None:
    env = {**os.environ, "BITLOOP_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "mapper", "search", "--spec", "panacea", "--model", "gpt2", "--jobs", "2"],
                            cwd=tmp_path, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        # the forkserver, the resource tracker and two workers
        while len(_group(proc.pid, proc.pid)) < 4 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None and len(_group(proc.pid, proc.pid)) >= 3, "the search ended before its workers started"
        os.kill(proc.pid, signal.SIGKILL)            # only the parent: no clean-up code runs in it
        proc.wait()
        deadline = time.monotonic() + 10
        while _group(proc.pid, proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = _group(proc.pid, proc.pid)
        assert not left, f"processes left after the parent died: {left}"
    finally:
        for pid in _group(proc.pid, proc.pid):
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
