"""One request to the runtime server, served by one of its workers (``runtime.cli.server``).

The command runs with the client's stdio on fds 0-2 and the client's working directory
(``runtime.cli.commands.execute``), its monitors launched by the server's zygote; afterwards
the worker holds none of the client's files. The wire format is in ``runtime.cli.client``.
"""

from __future__ import annotations

import array
import io
import os
import socket
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from runtime.cli import commands as cli_commands
from runtime.cli.client import MAGIC, MAX_FDS
from runtime.cli.commands import Foreground, Host, NeedsCaller
from runtime.errors import OCIRuntimeError
from runtime.launch.zygote import Zygote
from runtime.lifecycle import ForkLauncher
from runtime.monitor.launch import MonitorFds, MonitorRequest

_RECV_TIMEOUT = 5.0


class WorkerLauncher:
    """``runtime.lifecycle.MonitorLauncher`` of a worker: the server's zygote or, should it
    have died, a double fork from the worker (which is single-threaded and exits soon)."""

    def __init__(self, zygote: Zygote | None) -> None:
        self.zygote = zygote

    def launch(self, request: MonitorRequest, fds: MonitorFds) -> None:
        if self.zygote is not None:
            try:
                self.zygote.launch(request, fds)
                return
            except OCIRuntimeError:  # ZygoteError: gone; the server starts another
                self.zygote = None
        ForkLauncher(double=True).launch(request, fds)


def serve_connection(conn: socket.socket, zygote: Zygote | None, context: bytes) -> None:
    """Read the request on ``conn``, acknowledge it, run it and send the answer. A request
    that is not well-formed, or not from our own user, is dropped unacknowledged."""
    fds: list[int] = []
    try:
        conn.settimeout(_RECV_TIMEOUT)
        data, fds = _recv(conn)
        fields = data.split(b"\0")
        if not _trusted(conn) or len(fields) < 4 or fields[0] != MAGIC or len(fds) != 4:
            return
        conn.sendall(b"ack")
        conn.settimeout(None)
        answer, extra = _answer(fields, fds, Host(WorkerLauncher(zygote), is_caller=False),
                                context)
        try:
            socket.send_fds(conn, [answer], extra)
        finally:
            for fd in extra:  # the client's now
                os.close(fd)
    except OSError:
        pass  # the client went away; what it asked for is done or undone on disk anyway
    finally:
        for fd in fds:
            os.close(fd)
        conn.close()


def _answer(fields: list[bytes], fds: list[int], host: Host,
            context: bytes) -> tuple[bytes, list[int]]:
    kind, theirs, record = fields[1], fields[2], fields[3]
    argv = [f.decode("utf-8", "surrogateescape") for f in fields[4:]]
    if theirs != context:
        # Its paths, pids and cgroups would mean other things here, or it runs other code.
        return b"local", []
    with _as_client(fds):
        try:
            if kind == b"finish":
                return b"exit %d" % cli_commands.finish_command(argv, record, host), []
            _, result = cli_commands.execute(argv, host)
        except NeedsCaller:
            return b"local", []
        except Exception as e:  # noqa: BLE001 - a bug is reported, never a traceback
            print(f"crid-runtime: internal error in the runtime server: "
                  f"{type(e).__name__}: {e}", file=sys.stderr)
            return b"exit 1", []
    if isinstance(result, Foreground):
        return b"wait %d" % result.pid, [result.wait_fd]
    return b"exit %d" % result, []


@contextmanager
def _as_client(fds: list[int]) -> Iterator[None]:
    """The client's stdio on our fds 0-2 (and sys.std*), its working directory as ours, for
    one command; then /dev/null and / again."""
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    os.fchdir(fds[3])
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:
                pass
        sys.stdin, sys.stdout, sys.stderr = saved
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        for target in (0, 1, 2):
            os.dup2(null, target)
        os.close(null)
        os.chdir("/")


def _recv(conn: socket.socket) -> tuple[bytes, list[int]]:
    fds = array.array("i")
    data, anc, _, _ = conn.recvmsg(1 << 20, socket.CMSG_SPACE(MAX_FDS * fds.itemsize),
                                   socket.MSG_CMSG_CLOEXEC)
    for level, kind, raw in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(raw[: len(raw) - len(raw) % fds.itemsize])
    return data, list(fds)


def _trusted(conn: socket.socket) -> bool:
    """Only the server's own user may drive it (the socket is 0600 too)."""
    _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return uid == os.geteuid()
