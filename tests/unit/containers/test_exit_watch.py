"""The exit watcher hands each exit file to its callback promptly, from one thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from crid.containers.exit_watch import ExitWatchThread
from crid.containers.seams import ExitInfo
from runtime.monitor.exitfile import ExitStatus, write_exit_file


def test_exit_files_reach_the_callback_within_a_second(tmp_path: Path) -> None:
    seen: list[tuple[str, ExitInfo]] = []
    done = threading.Event()

    def on_exit(cid: str, info: ExitInfo) -> None:
        seen.append((cid, info))
        if len(seen) == 2:
            done.set()

    watcher = ExitWatchThread(tmp_path, on_exit)
    watcher.start()
    try:
        start = time.monotonic()
        write_exit_file(str(tmp_path / "c1"),
                        ExitStatus(10, 137, 9, True, "2026-11-22T23:00:00.000000005Z"))
        (tmp_path / "c2").write_text("not json")  # unreadable: logged, the watcher goes on
        write_exit_file(str(tmp_path / "c3"), ExitStatus(11, 0, None, False, ""))
        assert done.wait(1.0)
        assert time.monotonic() - start < 1.0
    finally:
        watcher.stop()
    assert [c for c, _ in seen] == ["c1", "c3"]
    assert (seen[0][1].exit_code, seen[0][1].oom_killed, seen[0][1].finished_at % 10) == (
        137, True, 5)
