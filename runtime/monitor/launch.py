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
from typing import Any

from runtime.monitor.loop import (
    ChildSpawner,
    Monitor,
    MonitorOptions,
    install_signals,
    set_up_in_child,
    take_handoff,
)
from runtime.records import dataclass, fields


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
                code = monitor_main(request, fds, make_spawner)
            else:
                code = 0
        finally:
            os._exit(code)
    if double:
        os.waitpid(pid, 0)


def monitor_main(request: MonitorRequest, fds: MonitorFds,
                 make_spawner: Callable[[dict], ChildSpawner]) -> int:
    """Become the monitor for ``request`` in the calling (freshly forked) process; returns
    its exit code. Closes every fd but those in ``fds`` and 0-2."""
    keep = {0, 1, 2, fds.reply} | ({fds.wait} if fds.wait is not None else set())
    keep |= set(fds.stdio or ())
    _close_all_but(keep)
    os.chdir("/")
    _set_comm("crid-monitor")
    return Monitor(request.monitor, lambda: make_spawner(request.spawner), fds.stdio, fds.reply,
                   fds.wait).run()


def monitor_from_wire(raw: bytes, fds: list[int],
                      parse: Callable[[bytes, list[int]], tuple[MonitorRequest, MonitorFds]],
                      report: Callable[[list[int], Exception], None],
                      make_spawner: Callable[[dict], ChildSpawner]) -> int:
    """Become the monitor for a request still in wire form (``raw``, with ``fds`` attached)
    in the calling, freshly forked process (the zygote's spare); returns its exit code.

    Unlike ``monitor_main``, the request is parsed in the throwaway set-up child too (json's
    and the records' code would cost the monitor pages of its own, see ``set_up_in_child``),
    which sends the monitor the options it runs by with the handoff. ``parse`` turns the
    wire form into the request (raising ValueError, KeyError, IndexError); ``report``
    answers a malformed one on its reply fd. Closes every fd but 0-2 and those ``fds`` the
    request names.
    """
    _close_all_but({0, 1, 2, *fds})
    os.chdir("/")
    _set_comm("crid-monitor")
    wake_r = install_signals()
    child, msg, got = set_up_in_child(
        lambda sock: _set_up_from_wire(sock, raw, fds, parse, report, make_spawner))
    handoff = take_handoff(msg)
    if handoff is None:
        for fd in got:
            os.close(fd)
        os.waitpid(child, 0)
        if not msg:  # the child died without a word (killed?)
            report(fds, OSError("the container's creator process died"))
        return 1
    reply = fds[int(handoff[b"reply"])]
    wait = fds[int(handoff[b"wait"])] if b"wait" in handoff else None
    for fd in set(fds) - {0, 1, 2, reply, wait}:  # the requester's stdio: the child had copies
        os.close(fd)
    monitor = Monitor(_options_from(handoff), lambda: make_spawner(parse(raw, fds)[0].spawner),
                      None, reply, wait)
    monitor.wake_r = wake_r
    return monitor.serve(monitor.adopt(child, handoff, True, got))


def _set_up_from_wire(sock: Any, raw: bytes, fds: list[int],
                      parse: Callable[[bytes, list[int]], tuple[MonitorRequest, MonitorFds]],
                      report: Callable[[list[int], Exception], None],
                      make_spawner: Callable[[dict], ChildSpawner]) -> int:
    """The set-up child of ``monitor_from_wire``: parse, then as ``Monitor.run``'s."""
    try:
        request, mfds = parse(raw, fds)
    except Exception as e:  # a malformed request: answer it on its reply fd, if any
        report(fds, e)
        sock.send(b"failed")
        return 1
    monitor = Monitor(request.monitor, lambda: make_spawner(request.spawner), mfds.stdio,
                      mfds.reply, mfds.wait)
    extra = _options_words(request.monitor) + [b"reply=%d" % fds.index(mfds.reply)]
    if mfds.wait is not None:
        extra.append(b"wait=%d" % fds.index(mfds.wait))
    return monitor.set_up_for_monitor(sock, extra)


def _options_words(opts: MonitorOptions) -> list[bytes]:
    """``opt.<field>=s<text>`` or ``=b0``/``=b1`` per field that is not None."""
    words = []
    for f in fields(opts):
        value = getattr(opts, f.name)
        if isinstance(value, bool):
            words.append(b"opt.%s=b%d" % (f.name.encode(), value))
        elif value is not None:
            words.append(b"opt.%s=s%s" % (f.name.encode(), os.fsencode(value)))
    return words


def _options_from(handoff: dict[bytes, bytes]) -> MonitorOptions:
    opts: dict[str, Any] = {}
    for key, value in handoff.items():
        if key[:4] == b"opt.":
            # bytes.decode as os.fsdecode does, without its Python code
            opts[key[4:].decode()] = (value[1:] == b"1" if value[:1] == b"b"
                                      else value[1:].decode(errors="surrogateescape"))
    return MonitorOptions(**opts)


def _set_comm(name: str) -> None:
    """Name the process in ps/top (the cmdline still reads like the zygote's).

    Plain fd calls: a text-mode ``open`` runs through io's and codecs' objects, and every page
    the monitor touches becomes its own copy (see ``set_up_in_child``)."""
    try:
        fd = os.open("/proc/self/comm", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, name.encode())
    except OSError:
        pass
    finally:
        os.close(fd)


def _close_all_but(keep: set[int]) -> None:
    """Close every fd but ``keep`` (closerange over the gaps: no directory listing)."""
    low = 0
    for fd in sorted(keep):
        if fd > low:  # never an empty range: closerange(a, b) with a >= b may close from a up
            os.closerange(low, fd)
        low = max(low, fd + 1)
    os.closerange(low, max(low + 1, _fd_limit()))


def _fd_limit() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (OSError, ValueError):
        return 1 << 20


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
