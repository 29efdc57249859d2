"""Status transitions, the state store, exit watching and CLI signal parsing."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from runtime.cli.commands import UsageError, parse_signal
from runtime.errors import ContainerExists, ContainerNotFound, InvalidState
from runtime.exits import ExitWatcher, wait_for_file
from runtime.linux.atomic import write_atomic
from runtime.state import ContainerRecord, StateStore, Status, is_alive, process_start_time


def test_transitions() -> None:
    assert [s for s in Status if s.can_start] == [Status.CREATED]
    assert [s for s in Status if s.can_exec] == [Status.RUNNING]
    assert not Status.RUNNING.can_delete and Status.STOPPED.can_delete
    assert Status.PAUSED.can_resume and not Status.RUNNING.can_resume
    with pytest.raises(InvalidState, match="cannot start container c1: it is running"):
        Status.RUNNING.require(Status.RUNNING.can_start, "start", "c1")


def test_store(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "root")
    store.reserve("c1")
    assert store.load("c1") is None  # reserved, still being created
    with pytest.raises(ContainerExists):
        store.reserve("c1")
    store.save(ContainerRecord(id="c1", bundle="/b", pid=7))
    loaded = store.load("c1")
    assert loaded is not None and (loaded.id, loaded.pid) == ("c1", 7)
    assert store.ids() == ["c1"]
    store.remove("c1")
    with pytest.raises(ContainerNotFound):
        store.load("c1")
    for bad in ("..", "a/b", "", "x" * 2000):
        with pytest.raises(ContainerNotFound):
            store.dir(bad)


def test_start_time_identity() -> None:
    start = process_start_time(os.getpid())
    assert start is not None and is_alive(os.getpid(), start)
    assert not is_alive(os.getpid(), start + 1)
    assert process_start_time(2**22 + 12345) is None


def test_exit_watcher(tmp_path: Path) -> None:
    with ExitWatcher(str(tmp_path)) as watcher:
        assert watcher.read(0) == []
        write_atomic(str(tmp_path / "c1"), b"{}")
        assert watcher.read(1) == ["c1"]
        assert watcher.existing() == ["c1"]
    threading.Timer(0.1, write_atomic, (str(tmp_path / "c2"), b"{}")).start()
    t = time.monotonic()
    assert wait_for_file(str(tmp_path / "c2"), 5)
    assert time.monotonic() - t < 2
    assert not wait_for_file(str(tmp_path / "c3"), 0.05)


def test_waits_on_one_watch_each_get_their_file(tmp_path: Path) -> None:
    """Many threads wait at once; whichever reads the shared inotify fd, each wakes for its
    own file (no timer: an event one read for another would otherwise be lost to it)."""
    names = [f"w{i}" for i in range(8)]
    (tmp_path / "other").mkdir()
    results: dict[str, bool] = {}

    def wait(name: str) -> None:
        where = tmp_path / "other" if name == "w7" else tmp_path
        results[name] = wait_for_file(str(where / name), None)

    threads = [threading.Thread(target=wait, args=(n,)) for n in names]
    for t in threads:
        t.start()
    short = threading.Thread(target=lambda: results.update(gone=wait_for_file(
        str(tmp_path / "never"), 0.01)))
    short.start()
    short.join()
    for name in reversed(names):
        where = tmp_path / "other" if name == "w7" else tmp_path
        write_atomic(str(where / name), b"{}")
    for t in threads:
        t.join(30)
    assert results == {"gone": False} | {n: True for n in names}


def test_parse_signal() -> None:
    assert parse_signal("9") == parse_signal("KILL") == parse_signal("SIGKILL") == 9
    assert parse_signal("term") == 15
    with pytest.raises(UsageError):
        parse_signal("NOPE")
