"""create -> created -> start -> running -> kill -> stopped -> delete, on the real init."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from runtime.errors import (
    ContainerExists,
    ContainerNotFound,
    InitError,
    InvalidState,
    SpecError,
)
from runtime.lifecycle import CreateRequest, Runtime
from runtime.state import Status
from tests.integration.runtime.lifekit import (  # noqa: F401  (fixtures)
    PREFIX,
    alive,
    runtime_fixture,
    wait_gone,
    write_bundle,
    zygote_fixture,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def cmdline_soon(pid: int, want: bytes) -> bytes:
    """The process's cmdline once it has exec'd (``start`` returns when the fifo is read, as
    runc's does, a moment before execve)."""
    deadline = time.monotonic() + 5
    while True:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            got = f.read()
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.01)


def test_full_lifecycle(runtime: Runtime, tmp_path: Path) -> None:
    cid = PREFIX + "cycle"
    bundle = write_bundle(tmp_path / "b", ["sleep", "300"], annotations={"a": "b"})
    created = runtime.create(CreateRequest(id=cid, bundle=bundle,
                                           pid_file=tmp_path / "pid"))
    st = runtime.state(cid)
    assert (st.status, st.pid) == (Status.CREATED, created.pid)
    assert st.to_dict() == {"ociVersion": "1.2.0", "id": cid, "status": "created",
                            "pid": created.pid, "bundle": str(bundle),
                            "annotations": {"a": "b"}}
    assert (tmp_path / "pid").read_text() == str(created.pid)
    runtime.start(cid)
    assert runtime.state(cid).status is Status.RUNNING
    assert cmdline_soon(created.pid, b"sleep\x00300\x00") == b"sleep\x00300\x00"
    with pytest.raises(InvalidState):
        runtime.start(cid)
    with pytest.raises(InvalidState):
        runtime.delete(cid)
    runtime.kill(cid, signal.SIGKILL)
    status = runtime.wait(cid, 10)
    assert (status.exit_code, status.signal, status.oom_killed) == (137, 9, False)
    assert runtime.state(cid).status is Status.STOPPED
    assert "pid" not in runtime.state(cid).to_dict()
    runtime.delete(cid)
    assert wait_gone(created.monitor_pid)
    with pytest.raises(ContainerNotFound):
        runtime.state(cid)


def test_exit_code_recorded(runtime: Runtime, tmp_path: Path) -> None:
    cid = PREFIX + "exit3"
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", "exit 3"])
    exits = tmp_path / "exits"
    exits.mkdir()
    runtime.create(CreateRequest(id=cid, bundle=bundle, exit_file=exits / cid))
    runtime.start(cid)
    assert runtime.wait(cid, 10).exit_code == 3
    record = json.loads((exits / cid).read_text())
    assert (record["exit_code"], record["signal"], record["oom_killed"]) == (3, None, False)
    assert record["finished_at"].endswith("Z")


def test_duplicate_and_missing(runtime: Runtime, tmp_path: Path) -> None:
    cid = PREFIX + "dup"
    bundle = write_bundle(tmp_path / "b", ["true"])
    runtime.create(CreateRequest(id=cid, bundle=bundle))
    with pytest.raises(ContainerExists):
        runtime.create(CreateRequest(id=cid, bundle=bundle))
    with pytest.raises(ContainerNotFound):
        runtime.state(PREFIX + "nope")
    with pytest.raises(ContainerNotFound):
        runtime.state("../etc")


def test_bad_spec_leaves_nothing(runtime: Runtime, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b", ["true"], ociVersion="9")
    with pytest.raises(SpecError):
        runtime.create(CreateRequest(id=PREFIX + "bad", bundle=bundle))
    assert runtime.store.ids() == []


def test_init_failure_is_reported_and_undone(runtime: Runtime, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b", ["true"], process__cwd="relative")
    with pytest.raises(SpecError, match="cwd"):
        runtime.create(CreateRequest(id=PREFIX + "fail", bundle=bundle))
    assert runtime.store.ids() == []
    # found inside the monitor (spawn_init), reported back as the same named type
    bundle = write_bundle(tmp_path / "b", ["true"], linux__namespaces=[{"type": "pid"}])
    with pytest.raises(SpecError, match="mount namespace"):
        runtime.create(CreateRequest(id=PREFIX + "fail", bundle=bundle))
    assert runtime.store.ids() == []
    bundle = write_bundle(tmp_path / "b", ["/no/such/binary"])
    with pytest.raises(InitError, match="no/such/binary"):
        runtime.create(CreateRequest(id=PREFIX + "fail", bundle=bundle))
    assert runtime.store.ids() == []


def test_recycled_pid_reads_stopped(runtime: Runtime, tmp_path: Path) -> None:
    cid = PREFIX + "reuse"
    bundle = write_bundle(tmp_path / "b", ["true"])
    runtime.create(CreateRequest(id=cid, bundle=bundle))
    rec = runtime.store.load(cid)
    assert rec is not None
    real_pid = rec.pid
    rec.pid = os.getpid()  # a live process, but not the container's
    runtime.store.save(rec)
    assert runtime.state(cid).status is Status.STOPPED
    rec.pid = real_pid
    runtime.store.save(rec)
    assert runtime.state(cid).status is Status.CREATED


def test_force_delete_running(runtime: Runtime, tmp_path: Path) -> None:
    cid = PREFIX + "force"
    bundle = write_bundle(tmp_path / "b", ["sleep", "300"])
    created = runtime.create(CreateRequest(id=cid, bundle=bundle))
    runtime.start(cid)
    runtime.delete(cid, force=True)
    assert not alive(created.pid)
    assert wait_gone(created.monitor_pid)
    assert runtime.list_containers() == []


def test_delete_created_container(runtime: Runtime, tmp_path: Path) -> None:
    cid = PREFIX + "delcreated"
    created = runtime.create(CreateRequest(id=cid, bundle=write_bundle(tmp_path / "b",
                                                                       ["true"])))
    runtime.delete(cid)
    assert wait_gone(created.pid) and wait_gone(created.monitor_pid)


def test_features(runtime: Runtime) -> None:
    f = runtime.features()
    assert (f["ociVersionMin"], f["ociVersionMax"]) == ("1.0.0", "1.2.0")
    assert "pid" in f["linux"]["namespaces"]


def test_exit_watcher_sees_exits_promptly(runtime: Runtime, tmp_path: Path) -> None:
    from runtime.exits import ExitWatcher

    exits = tmp_path / "exits"
    exits.mkdir()
    bundle = write_bundle(tmp_path / "b", ["sleep", "300"])
    with ExitWatcher(str(exits)) as watcher:
        for name in ("w1", "w2"):
            runtime.create(CreateRequest(id=PREFIX + name, bundle=bundle,
                                         exit_file=exits / (PREFIX + name)))
            runtime.start(PREFIX + name)
        runtime.kill(PREFIX + "w2", signal.SIGKILL)
        assert watcher.read(1.0) == [PREFIX + "w2"]
        runtime.kill(PREFIX + "w1", signal.SIGKILL)
        assert watcher.read(1.0) == [PREFIX + "w1"]
        assert watcher.existing() == [PREFIX + "w1", PREFIX + "w2"]


def test_monitor_killed_container_still_deletable(runtime: Runtime, tmp_path: Path) -> None:
    cid = PREFIX + "nomon"
    created = runtime.create(CreateRequest(id=cid, bundle=write_bundle(tmp_path / "b",
                                                                       ["sleep", "300"])))
    runtime.start(cid)
    os.kill(created.monitor_pid, signal.SIGKILL)
    assert wait_gone(created.monitor_pid)
    assert runtime.state(cid).status is Status.RUNNING
    t = time.monotonic()
    runtime.delete(cid, force=True)
    assert time.monotonic() - t < 1.5
    assert wait_gone(created.pid)


def test_unwritable_pid_file_undoes_create(runtime: Runtime, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b", ["sleep", "300"])
    with pytest.raises(OSError):
        runtime.create(CreateRequest(id=PREFIX + "pidfile", bundle=bundle,
                                     pid_file=tmp_path / "missing-dir" / "pid"))
    assert runtime.store.ids() == []
