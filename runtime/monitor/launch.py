"""Starting a monitor: a fork from a single-threaded process (the zygote or the CLI), in a
session of its own, so that it outlives whoever asked for it. The zygote ignores SIGCHLD (the
kernel reaps its monitors) and the CLI exits soon after; other callers double-fork, so the
monitor is nobody's child (see ``fork_monitor``).

The requester learns the outcome from a reply fd: the monitor writes one JSON line
(``{"ok": true, "pid": ..., "monitor_pid": ...}`` or ``{"ok": false, "error": ..., "type": ...}``).
With a wait fd, the monitor also writes the exit record there when the process has ended.
"""

from __future__ import annotations

import json
import os
import select
import time
from collections.abc import Callable

from runtime.monitor.loop import ChildSpawner, Monitor, MonitorOptions
from runtime.records import dataclass


@dataclass(frozen=True)
class MonitorRequest:
    """Everything a monitor needs, in JSON-serialisable form (it crosses the zygote socket).

    ``spawner`` is the parameter dict of ``runtime.spawners.make_spawner``.
    """

    monitor: MonitorOptions
    spawner: dict

    def to_dict(self) -> dict:
        from runtime.records import asdict
        return {"monitor": asdict(self.monitor), "spawner": self.spawner}

    @classmethod
    def from_dict(cls, d: dict) -> MonitorRequest:
        return cls(MonitorOptions.from_dict(d["monitor"]), dict(d["spawner"]))


@dataclass(frozen=True)
class MonitorFds:
    """Fds handed to the monitor: the reply fd, an optional wait fd, optional stdio to inherit."""

    reply: int
    wait: int | None = None
    stdio: tuple[int, int, int] | None = None


def fork_monitor(request: MonitorRequest, fds: MonitorFds,
                 make_spawner: Callable[[dict], ChildSpawner], double: bool = True) -> None:
    """Fork a monitor for ``request`` in a session of its own and return.

    With ``double`` (the default) it is forked from an intermediate child that is reaped here,
    so the monitor is nobody's child. Without, it is the caller's child and one fork cheaper
    (1-2 ms): only for callers that never wait for it and ignore SIGCHLD (the zygote) or exit
    soon (the CLI); the monitor is re-parented when they exit.

    Call only from a single-threaded process. The monitor closes every fd but those in ``fds``.
    """
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setsid()
            if not double or os.fork() == 0:
                code = _monitor_main(request, fds, make_spawner)
            else:
                code = 0
        finally:
            os._exit(code)
    if double:
        os.waitpid(pid, 0)


def _monitor_main(request: MonitorRequest, fds: MonitorFds,
                  make_spawner: Callable[[dict], ChildSpawner]) -> int:
    keep = {0, 1, 2, fds.reply} | ({fds.wait} if fds.wait is not None else set())
    keep |= set(fds.stdio or ())
    _close_all_but(keep)
    os.chdir("/")
    _set_comm("crid-monitor")
    return Monitor(request.monitor, lambda: make_spawner(request.spawner), fds.stdio, fds.reply,
                   fds.wait).run()


def _set_comm(name: str) -> None:
    """Name the process in ps/top (the cmdline still reads like the zygote's)."""
    try:
        with open("/proc/self/comm", "w") as f:
            f.write(name)
    except OSError:
        pass


def _close_all_but(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def read_reply(fd: int, timeout: float) -> dict:
    """Read the monitor's one-line JSON reply from ``fd`` (which is closed afterwards).

    Raises TimeoutError, or OSError when the monitor died without answering.
    """
    deadline = time.monotonic() + timeout
    buf = b""
    try:
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"no answer from the container monitor within {timeout}s")
            chunk = os.read(fd, 4096)
            if not chunk:
                if buf.strip():
                    break
                raise OSError("the container monitor exited without answering")
            buf += chunk
    finally:
        os.close(fd)
    return json.loads(buf.split(b"\n", 1)[0])
