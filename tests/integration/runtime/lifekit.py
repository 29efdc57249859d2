"""Shared pieces of the lifecycle/monitor/zygote/CLI tests: bundles, a zygote-backed Runtime
that force-deletes whatever a test left behind, and leak checks."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.launch.zygote import Zygote
from runtime.lifecycle import Runtime
from tests.integration.runtime.bundle import default_config, make_rootfs

# Unique per test process: container ids name cgroups, and two runs of these tests at once
# (several work trees on one machine) must neither share cgroups nor see each other's leaks.
PREFIX = f"crt-life-{os.getpid()}-"


def write_bundle(path: Path, args: list[str], **changes: Any) -> Path:
    """A busybox bundle at ``path`` running ``args``; ``changes`` patch config keys
    (``process__terminal=True`` sets config["process"]["terminal"])."""
    if not (path / "rootfs").exists():
        make_rootfs(str(path / "rootfs"))
    config = default_config(args)
    config["hostname"] = "crt-life-box"
    for key, value in changes.items():
        target = config
        *parents, last = key.split("__")
        for p in parents:
            target = target.setdefault(p, {})
        target[last] = value
    (path / "config.json").write_text(json.dumps(config))
    return path


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def wait_for(cond: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll ``cond`` until true (returns True) or ``timeout`` seconds pass (returns False)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    return wait_for(lambda: not alive(pid), timeout)


def mounts_mentioning(text: str) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if text in line]


@pytest.fixture(scope="module", name="zygote")
def zygote_fixture() -> Iterator[Zygote]:
    z = Zygote.start()
    yield z
    z.close()


@pytest.fixture(name="runtime")
def runtime_fixture(tmp_path: Path, zygote: Zygote) -> Iterator[Runtime]:
    rt = Runtime(tmp_path / "state", zygote)
    yield rt
    monitors, ids = [], rt.store.ids()
    for cid in ids:
        rec = rt.store.load(cid)
        if rec is not None:
            monitors += [rec.monitor_pid, rec.pid]
        rt.delete(cid, force=True)
    for pid in monitors:
        assert wait_gone(pid), f"process {pid} (monitor or init) outlived its container"
    assert mounts_mentioning(str(tmp_path)) == []
    assert leftover_cgroups(PREFIX) == []


def leftover_cgroups(prefix: str) -> list[str]:
    """Cgroup directories named with ``prefix`` directly under any hierarchy's root."""
    base = Path("/sys/fs/cgroup")
    return [str(d) for h in base.iterdir() if h.is_dir() for d in h.glob(prefix + "*")]
