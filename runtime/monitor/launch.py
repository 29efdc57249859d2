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

from runtime.errors import OCIRuntimeError
from runtime.launch.procname import set_comm
from runtime.monitor.handoff import fork_with_channel, receive_handoff, take_handoff
from runtime.monitor.loop import Monitor, install_signals
from runtime.monitor.options import ChildSpawner, MonitorOptions
from runtime.monitor.setup import MonitorSetUp
from runtime.monitor.stdio import ChildStdio
from runtime.records import dataclass, fields


@dataclass(frozen=True)
class MonitorRequest:
    """Everything a monitor needs. ``spawner`` is what ``make_spawner`` takes (the records of
    ``runtime.launch.params``, whose codec carries the request across the zygote socket); the
    monitor only hands it on.
    """

    monitor: MonitorOptions
    spawner: Any


@dataclass(frozen=True)
class MonitorFds:
    """Fds handed to the monitor: the reply fd, an optional wait fd, optional stdio to inherit,
    fds the process gets as 3, 4, ..."""

    reply: int
    wait: int | None = None
    stdio: tuple[int, int, int] | None = None
    preserved: tuple[int, ...] = ()


def fork_monitor(request: MonitorRequest, fds: MonitorFds,
                 make_spawner: Callable[[Any], ChildSpawner], double: bool = True) -> None:
    """Fork a monitor for ``request`` in a session of its own and return.

    With ``double`` (the default) it is forked from an intermediate child that is reaped here,
    so the monitor is nobody's child. Without, it is the caller's child and one fork cheaper:
    only for callers that never wait for it and ignore SIGCHLD (the zygote) or exit
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
                 make_spawner: Callable[[Any], ChildSpawner]) -> int:
    """Become the monitor for ``request`` in the calling (freshly forked) process; returns
    its exit code. Closes every fd but those in ``fds`` and 0-2."""
    keep = {0, 1, 2, fds.reply} | ({fds.wait} if fds.wait is not None else set())
    keep |= set(fds.stdio or ()) | set(fds.preserved)
    _close_all_but(keep)
    os.chdir("/")
    set_comm("crid-monitor")
    return Monitor(request.monitor, lambda: make_spawner(request.spawner), fds.stdio, fds.reply,
                   fds.wait, fds.preserved).run()


def monitor_ahead(take: Callable[[], tuple[bytes, list[int]] | None],
                  deferred: Callable[[bytes], bool],
                  parse: Callable[[bytes, list[int]], tuple[MonitorRequest, MonitorFds]],
                  report: Callable[[list[int], Exception], None],
                  make_spawner: Callable[[Any], ChildSpawner]) -> int:
    """Become a monitor in the calling, freshly forked process (the zygote's spare) whose
    set-up child is forked *before* the request comes; returns the exit code.

    The child takes the request (``take``: the next request in wire form with its fds, None
    when there is none) and, when it is ``deferred``, parses it, sets up and spawns the
    process and sends this process the handoff (the options it runs by, the reply and wait
    fds among the fds it keeps; see ``set_up_in_child`` for why the set-up runs in a child).
    The fork and this process's own preparation are thus off the request's path. A brief
    request (not deferred) is served by the child itself as its monitor (one fork less for
    a process that ends soon): this process then exits. Closes every fd but 0-2.
    """
    os.chdir("/")
    wake_r, wake_w = install_signals()  # before the fork: the child inherits the handler
    child, ours = fork_with_channel(
        lambda sock: _take_and_set_up(sock, take, deferred, parse, report, make_spawner))
    _close_all_but({0, 1, 2, ours.fileno(), wake_r, wake_w})
    msg, got = receive_handoff(ours)
    if msg in (_BRIEF, _CLOSED):
        return 0
    set_comm("crid-monitor")
    handoff = take_handoff(msg)
    if handoff is None:  # it failed and answered the requester, or died (who reads EOF)
        for fd in got:
            os.close(fd)
        os.waitpid(child, 0)
        return 1
    reply = got[int(handoff[b"reply"])]
    wait = got[int(handoff[b"wait"])] if b"wait" in handoff else None
    monitor = Monitor(_options_from(handoff), _Uncounted, None, reply, wait)
    monitor.wake_r = wake_r
    return monitor.serve(monitor.setup.adopt(child, handoff, True, got))


_BRIEF, _CLOSED = b"brief", b"closed"


def _take_and_set_up(sock: Any, take: Callable[[], tuple[bytes, list[int]] | None],
                     deferred: Callable[[bytes], bool],
                     parse: Callable[[bytes, list[int]], tuple[MonitorRequest, MonitorFds]],
                     report: Callable[[list[int], Exception], None],
                     make_spawner: Callable[[Any], ChildSpawner]) -> int:
    """The set-up child of ``monitor_ahead``: take a request and set up, or serve a brief one
    as its monitor, or tell the monitor there is none."""
    received = take()
    if received is None:
        sock.send(_CLOSED)
        return 0
    raw, fds = received
    if not deferred(raw):
        sock.send(_BRIEF)  # our parent exits; we are the monitor
        sock.close()
        try:
            request, monitor_fds = parse(raw, fds)
        except Exception as e:  # a malformed request: answer it on its reply fd, if any
            report(fds, e)
            return 1
        return monitor_main(request, monitor_fds, make_spawner)
    _close_all_but({0, 1, 2, sock.fileno(), *fds})
    set_comm("crid-monitor")  # (a monitor's set-up)
    return _set_up_from_wire(sock, raw, fds, parse, report, make_spawner)


class _Uncounted:
    """The spawner of a monitor that has none: its set-up child sends where the OOM kills
    are counted (``oomdir``/``oomfile``), or there is nowhere (no memory controller)."""

    def spawn(self, stdio: ChildStdio) -> int:
        raise OCIRuntimeError("an adopted monitor's process was spawned by its set-up child")

    def oom_kill_count(self) -> int:
        return 0

    def oom_counter(self) -> tuple[str, str] | None:
        return None

    def leftover_group(self) -> str | None:
        return None


def _set_up_from_wire(sock: Any, raw: bytes, fds: list[int],
                      parse: Callable[[bytes, list[int]], tuple[MonitorRequest, MonitorFds]],
                      report: Callable[[list[int], Exception], None],
                      make_spawner: Callable[[Any], ChildSpawner]) -> int:
    """The set-up of ``monitor_ahead``'s child: parse, then set up as ``Monitor.run``'s does."""
    try:
        request, mfds = parse(raw, fds)
    except Exception as e:  # a malformed request: answer it on its reply fd, if any
        report(fds, e)
        sock.send(b"failed")
        return 1
    setup = MonitorSetUp(request.monitor, lambda: make_spawner(request.spawner), mfds.stdio,
                         mfds.reply, mfds.preserved)
    passed = {b"reply": mfds.reply}
    if mfds.wait is not None:
        passed[b"wait"] = mfds.wait
    return setup.set_up_for_monitor(sock, _options_words(request.monitor), passed)


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
