"""Cgroup-backed lifecycle parts: OOM kill recorded in the exit file, pause/resume, ps,
update, kill --all, and no cgroup left behind."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest

from runtime.errors import InvalidState
from runtime.lifecycle import CreateRequest, Runtime
from runtime.state import Status
from tests.integration.runtime.lifekit import (  # noqa: F401  (fixtures)
    PREFIX,
    runtime_fixture,
    wait_gone,
    write_bundle,
    zygote_fixture,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
MEMORY = Path("/sys/fs/cgroup/memory")


def cgroup_name() -> str:
    return f"{PREFIX}{uuid.uuid4().hex[:8]}"


def test_oom_kill_recorded(runtime: Runtime, tmp_path: Path) -> None:
    cid, cg = PREFIX + "oom", cgroup_name()
    hog = "x=xxxxxxxxxxxxxxxx; while true; do x=$x$x; done"
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", hog], linux__cgroupsPath="/" + cg,
                          linux__resources={"memory": {"limit": 16 << 20, "swap": 16 << 20}})
    runtime.create(CreateRequest(id=cid, bundle=bundle))
    assert (MEMORY / cg / "memory.limit_in_bytes").read_text().strip() == str(16 << 20)
    runtime.start(cid)
    status = runtime.wait(cid, 30)
    assert (status.exit_code, status.signal, status.oom_killed) == (137, 9, True)
    runtime.delete(cid)
    assert not (MEMORY / cg).exists()


def test_kill_9_is_not_oom(runtime: Runtime, tmp_path: Path) -> None:
    cid, cg = PREFIX + "k9", cgroup_name()
    bundle = write_bundle(tmp_path / "b", ["sleep", "300"], linux__cgroupsPath="/" + cg,
                          linux__resources={"memory": {"limit": 64 << 20}})
    runtime.create(CreateRequest(id=cid, bundle=bundle))
    runtime.start(cid)
    runtime.kill(cid, signal.SIGKILL)
    status = runtime.wait(cid, 10)
    assert (status.exit_code, status.signal, status.oom_killed) == (137, 9, False)


def test_pause_resume_ps_update_kill_all(runtime: Runtime, tmp_path: Path) -> None:
    cid, cg = PREFIX + "pause", cgroup_name()
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", "sleep 300 & sleep 301 & wait"],
                          linux__cgroupsPath="/" + cg)
    created = runtime.create(CreateRequest(id=cid, bundle=bundle))
    with pytest.raises(InvalidState):
        runtime.pause(cid)
    runtime.start(cid)
    deadline = time.monotonic() + 5
    while len(runtime.ps(cid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    pids = runtime.ps(cid)
    assert len(pids) == 3 and created.pid in pids
    runtime.pause(cid)
    assert runtime.state(cid).status is Status.PAUSED
    assert runtime.state(cid).to_dict()["status"] == "paused"
    with pytest.raises(InvalidState):
        runtime.pause(cid)
    runtime.resume(cid)
    assert runtime.state(cid).status is Status.RUNNING
    runtime.update(cid, {"memory": {"limit": 48 << 20}, "pids": {"limit": 20}})
    assert (MEMORY / cg / "memory.limit_in_bytes").read_text().strip() == str(48 << 20)
    assert runtime.stats(cid).pids.current == 3
    runtime.kill(cid, signal.SIGKILL, all=True)
    assert all(wait_gone(p) for p in pids)
    assert runtime.wait(cid, 10).signal == signal.SIGKILL
    runtime.delete(cid)
    assert not (MEMORY / cg).exists()


def test_force_delete_paused(runtime: Runtime, tmp_path: Path) -> None:
    cid, cg = PREFIX + "delpaused", cgroup_name()
    bundle = write_bundle(tmp_path / "b", ["sleep", "300"], linux__cgroupsPath="/" + cg)
    created = runtime.create(CreateRequest(id=cid, bundle=bundle))
    runtime.start(cid)
    runtime.pause(cid)
    runtime.delete(cid, force=True)
    assert wait_gone(created.pid) and wait_gone(created.monitor_pid)
    assert not (MEMORY / cg).exists()
    assert not Path("/sys/fs/cgroup/freezer", cg).exists()
