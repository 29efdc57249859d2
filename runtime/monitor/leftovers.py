"""Ending what a container's init leaves behind in its cgroup.

A container without a PID namespace of its own (it shares its pod's, or the host's) does not
end with its init: the kernel kills a PID namespace's processes only when that namespace's
pid 1 exits, and the init is not that pid 1. `sh -c "sleep 86400 & wait"` stopped by SIGTERM
leaves its sleep running, holding the output pipes and the cgroup. So once the init has exited
the monitor kills every process left in the container's cgroup and waits until the cgroup is
empty, and only then records the exit: what containerd's runc shim does on such an init's exit
(``ShouldKillAllOnExit``) and runc at delete (``signalAllProcesses``). A stop thus returns with
nothing of the container left, and its cgroup can be removed at once.

``group_dir`` picks the one directory that does it: the cgroup2 directory when it has
``cgroup.kill`` (a cgroup2 host, or a hybrid host's unified hierarchy: the kernel kills the
whole subtree at once, and ``cgroup.events`` tells when it is empty), else the v1 freezer's
(frozen, every process signalled, thawed, so none forks a child the loop would miss).
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Callable

_EMPTY_WAIT = 10.0  # seconds: a process in uninterruptible sleep may take long to die


def group_dir(dirs: dict[str, str]) -> str | None:
    """The directory of ``dirs`` ({controller: dir}, "" for cgroup2) to end the cgroup by."""
    unified = dirs.get("")
    if unified and os.path.exists(os.path.join(unified, "cgroup.kill")):
        return unified
    return dirs.get("freezer") or unified or None


def end_group(directory: str, reap: Callable[[], None] | None = None) -> bool:
    """Kill every process in the cgroup at ``directory`` (and its sub-cgroups) and wait until
    none is left; ``reap()`` is called whenever the wait wakes (the caller reaps the killed
    processes that were its children). True when the cgroup is empty; a cgroup already gone
    counts as empty."""
    try:
        if not _populated(directory):
            return True
        _kill(directory)
        return _wait_empty(directory, reap)
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _populated(directory: str) -> bool:
    events = os.path.join(directory, "cgroup.events")
    if os.path.exists(events):
        return b"populated 1" in _read(events)
    return bool(_procs(directory))


def _kill(directory: str) -> None:
    if os.path.exists(os.path.join(directory, "cgroup.kill")):
        _write(os.path.join(directory, "cgroup.kill"), b"1")
        return
    state = os.path.join(directory, "freezer.state")
    frozen = os.path.exists(state)
    if frozen:
        _write(state, b"FROZEN")
        _wait_frozen(state)
    try:
        for pid in _procs(directory):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    finally:
        if frozen:
            _write(state, b"THAWED")  # SIGKILL is delivered on thaw


def _wait_frozen(state: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while _read(state).strip() != b"FROZEN" and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
        _write(state, b"FROZEN")  # v1 can stay FREEZING when a task forked meanwhile


def _wait_empty(directory: str, reap: Callable[[], None] | None) -> bool:
    """Woken by ``cgroup.events`` (POLLPRI on every change) where there is one; a v1-only host
    has no such event, and is polled."""
    events = os.path.join(directory, "cgroup.events")
    fd = os.open(events, os.O_RDONLY | os.O_CLOEXEC) if os.path.exists(events) else -1
    deadline = time.monotonic() + _EMPTY_WAIT
    delay = 0.001
    try:
        poller = select.poll()
        if fd >= 0:
            poller.register(fd, select.POLLPRI)
        while _populated(directory):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            poller.poll(min(left, 1.0 if fd >= 0 else delay) * 1000)
            delay = min(delay * 2, 0.05)
            if reap is not None:
                reap()
        return True
    finally:
        if fd >= 0:
            os.close(fd)


def _procs(directory: str) -> list[int]:
    pids = []
    for d, _, _ in os.walk(directory):
        try:
            pids += [int(p) for p in _read(os.path.join(d, "cgroup.procs")).split()]
        except FileNotFoundError:
            continue
    return pids


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


def _write(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
