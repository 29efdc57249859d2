"""crid.children: marked processes of another daemon are found (ours are not) and ended, and
adopted children are reaped as they exit (no zombie waits for the next Popen)."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path

from crid.children import DAEMON, OWNER, POD, REAPER, end_process, mark, marked_before_us


def _sleeper(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(["sleep", "60"], env={**os.environ, **env})


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return "gone"


def test_another_daemons_marked_process_is_found_and_ended(tmp_path: Path) -> None:
    root = tmp_path / "run"
    pod = secrets.token_hex(8)
    theirs = _sleeper({OWNER: str(root), DAEMON: "1:1", POD: pod})
    ours = _sleeper(mark(root))
    other_root = _sleeper({OWNER: str(tmp_path / "elsewhere"), DAEMON: "1:1"})
    try:
        found = marked_before_us(root)
        assert [(p.pid, p.pod_id, p.comm) for p in found] == [(theirs.pid, pod, "sleep")]
        end_process(found[0])
        assert theirs.wait(5) == -9
        assert marked_before_us(root) == []
    finally:
        for p in (theirs, ours, other_root):
            p.kill()
            p.wait()


def test_an_adopted_child_is_reaped_when_it_exits() -> None:
    child = subprocess.Popen(["sleep", "0.05"])
    REAPER.adopt(child)
    deadline = time.monotonic() + 10
    while child.returncode is None and time.monotonic() < deadline:  # set by the reaper
        time.sleep(0.005)
    assert child.returncode == 0
    assert _state(child.pid) != "Z"
