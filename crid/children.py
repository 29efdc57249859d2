"""The daemon's own processes: reaped the moment they exit, and found again after a crash.

Reaping: a child the daemon does not wait for itself (a pod's `unshare` holder) is handed to
`REAPER`, one thread that waits on the children's pidfds and reaps each as it exits. Python's
subprocess module would reap a dropped Popen only when the next one is made, so a removed
pod's holder stayed a zombie until the next pod started.

Marks: every process the daemon starts that outlives a call (the zygote, and with it every
spare, monitor and set-up child it forks; pod holders) carries `CRID_OWNER=<run root>` and
`CRID_DAEMON=<pid>:<start time>` of the daemon that started it in its environment from its first
instruction (the execve that starts it, or the fork of a marked process), and a pod holder
`CRID_POD=<pod id>` too. A daemon killed between starting such a process and recording it
leaves it unknown to the next one: `marked_before_us` finds those of this run root that another
daemon started, so its start-up can end the ones no record claims. The environment is the
mark because it needs nothing done after the process exists (no window in which a crash
leaves it unmarked) and a process can mark only itself.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import threading
from dataclasses import dataclass

from runtime.api import process_start_time, wait_exit

OWNER, DAEMON, POD = "CRID_OWNER", "CRID_DAEMON", "CRID_POD"


def _this_daemon() -> str:
    return f"{os.getpid()}:{process_start_time(os.getpid()) or 0}"


def mark(run_root: object, pod_id: str = "") -> dict[str, str]:
    """The environment entries that mark a process as this run root's, started by this
    daemon (and a pod's)."""
    marks = {OWNER: str(run_root), DAEMON: _this_daemon()}
    if pod_id:
        marks[POD] = pod_id
    return marks


@dataclass(frozen=True)
class Marked:
    pid: int
    start: int  # clock ticks, as runtime.state.process_start_time reads them
    comm: str
    pod_id: str  # "" unless the process is a pod's


def marked_before_us(run_root: object) -> list[Marked]:
    """Live processes marked with ``run_root`` that another daemon started (a previous one's;
    none this one started)."""
    owner, ours = f"{OWNER}={run_root}".encode(), f"{DAEMON}={_this_daemon()}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        env = _environ(int(name))
        if owner not in env or ours in env:
            continue
        start = process_start_time(int(name))
        if start is None:
            continue
        found.append(Marked(int(name), start, _comm(int(name)), _value(env, POD)))
    return found


def _value(env: list[bytes], key: str) -> str:
    prefix = key.encode() + b"="
    return next((e[len(prefix):].decode(errors="replace") for e in env if e.startswith(prefix)),
                "")


def end_process(p: Marked, grace: float = 5.0) -> None:
    """SIGKILL the marked process if it still is the one found, and wait until it is gone."""
    try:
        fd = os.pidfd_open(p.pid)
    except ProcessLookupError:
        return
    try:
        if process_start_time(p.pid) == p.start:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)
    wait_exit(p.pid, p.start, grace)


def _environ(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


class ChildReaper:
    """Reaps handed-over children (Popen objects) as soon as they exit: one thread, woken by
    the children's pidfds."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._children: dict[int, subprocess.Popen] = {}  # pidfd -> child
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._thread: threading.Thread | None = None

    def adopt(self, child: subprocess.Popen) -> None:
        """Reap ``child`` when it exits (never waited for by the caller)."""
        try:
            fd = os.pidfd_open(child.pid)
        except ProcessLookupError:  # already reaped by someone
            return
        with self._lock:
            self._children[fd] = child
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="reaper", daemon=True)
                self._thread.start()
        os.write(self._wake_w, b"x")

    def wait(self, pid: int, timeout: float) -> bool:
        """Wait until the adopted child ``pid`` is reaped (here or by the reaper thread);
        False if it is not an adopted child, or still running after ``timeout`` seconds."""
        with self._lock:
            child = next((c for c in self._children.values() if c.pid == pid), None)
        if child is None:
            return False
        try:
            child.wait(timeout)  # Popen.wait is safe beside the reaper's own
        except subprocess.TimeoutExpired:
            return False
        return True

    def _run(self) -> None:
        while True:
            poller = select.poll()
            poller.register(self._wake_r, select.POLLIN)
            with self._lock:
                for fd in self._children:
                    poller.register(fd, select.POLLIN)
            for fd, _ in poller.poll():
                if fd == self._wake_r:
                    _drain(fd)
                    continue
                with self._lock:
                    child = self._children.pop(fd, None)
                os.close(fd)
                if child is not None:
                    child.wait()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


REAPER = ChildReaper()  # the process's children are one set: one reaper per process
