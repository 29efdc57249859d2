"""The container's stdio as the monitor sets it up: pipes, a pty via a console socket, or
the requester's own fds passed through."""

from __future__ import annotations

import array
import os
import socket

from runtime.monitor.attach import listen_unix
from runtime.records import dataclass, field


@dataclass
class ChildStdio:
    """What the spawned process gets: fds for 0/1/2 (None: /dev/null), or a console socket
    path (terminal: the child creates the pty and sends its master there, runc-style); and
    the fds it gets as 3, 4, ..."""

    stdin: int | None = None
    stdout: int | None = None
    stderr: int | None = None
    console_socket: str | None = None
    preserved: tuple[int, ...] = ()


@dataclass
class MonitorSide:
    """The ends the monitor keeps: output fds by stream number, the stdin writer, a pty master."""

    outputs: dict[int, int] = field(default_factory=dict)
    stdin: int | None = None
    pty: int | None = None


class StdioPlan:
    """Creates the pipe pairs / console socket and closes the child's ends after spawn."""

    def __init__(self) -> None:
        self.child = ChildStdio()
        self.mine = MonitorSide()
        self._child_fds: list[int] = []
        self._console: socket.socket | None = None
        self._console_path: str | None = None

    def pipes(self, want_stdin: bool) -> None:
        for stream in (1, 2):
            r, w = os.pipe2(os.O_CLOEXEC)
            self.mine.outputs[stream] = r
            self._child_fds.append(w)
        self.child.stdout, self.child.stderr = self._child_fds
        if want_stdin:
            r, w = os.pipe2(os.O_CLOEXEC)
            self.child.stdin, self.mine.stdin = r, w
            self._child_fds.append(r)

    def preserve(self, fds: tuple[int, ...]) -> None:
        self.child.preserved = fds
        self._child_fds.extend(set(fds))

    def inherit(self, fds: tuple[int, int, int]) -> None:
        self.child.stdin, self.child.stdout, self.child.stderr = fds
        self._child_fds.extend(fd for fd in set(fds) if fd > 2)

    def console(self, path: str) -> None:
        """Listen on ``path``; the child sends the pty master there."""
        self._console = listen_unix(path, 1)
        self._console_path = path
        self.child.console_socket = path

    @property
    def console_path(self) -> str | None:
        """The console socket's path (terminal mode), None otherwise."""
        return self._console_path

    def after_spawn(self, timeout: float = 10.0, unlink: bool = True) -> None:
        """Close the child's ends; in terminal mode receive the pty master and, with
        ``unlink``, remove the console socket's file (without: the caller's job, e.g. when it
        has entered the container's mount namespace since). Raises OSError."""
        for fd in self._child_fds:
            os.close(fd)
        self._child_fds.clear()
        if self._console is None:
            return
        try:
            self._console.settimeout(timeout)
            conn, _ = self._console.accept()
            with conn:
                conn.settimeout(timeout)
                master = _recv_fd(conn)
        finally:
            self._console.close()
            if unlink:
                os.unlink(self._console_path or "")
        os.set_blocking(master, False)
        self.mine.pty = master
        self.mine.outputs[1] = master

    def abort(self) -> None:
        for fd in self._child_fds + list(self.mine.outputs.values()):
            os.close(fd)
        if self.mine.stdin is not None:
            os.close(self.mine.stdin)
        if self._console is not None:
            self._console.close()


def _recv_fd(conn: socket.socket) -> int:
    fds = array.array("i")
    _, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    if not fds:
        raise OSError("console socket: no pty master received")
    for extra in fds[1:]:
        os.close(extra)
    return fds[0]
