"""The seam between the streaming server and the daemon's containers and pods.

crid implements `StreamingBackend` with the runtime's exec, the monitor's attach socket and a
connect inside the pod's network namespace; the tests use a host-process backend.
"""

from __future__ import annotations

import socket
from typing import Protocol

from crid.streaming.protocol.requests import AttachRequest, ExecRequest, TerminalSize


class ProcessHandle(Protocol):
    """A running exec'd process or an attachment, seen through file descriptors.

    `stdin` is writable, `stdout`/`stderr` readable (with a tty `stdout` is the pty master and
    `stderr` is None; `stdin` may be the same fd). The server makes them non-blocking and never
    closes them itself: `close()` does.
    """

    stdin: int | None
    stdout: int | None
    stderr: int | None

    def close_stdin(self) -> None:
        """The client closed stdin: deliver EOF (close the pipe; with a tty, send EOT)."""

    def resize(self, size: TerminalSize) -> None:
        """Set the terminal size (TIOCSWINSZ); ignored without a tty."""

    async def wait(self) -> int:
        """Return the exit code (128+signal when killed by a signal).

        For attach: when the container's main process exits.
        """

    def kill(self) -> None:
        """The client went away during exec: kill the process. Attach handles do nothing."""

    def close(self) -> None:
        """Release the fds (for attach: detach; the container keeps running)."""


class StreamingBackend(Protocol):
    """What the streaming server needs from the daemon; all three run on the server's loop.

    Raises:
        BackendError: no such container/pod, or it cannot be entered or connected.
    """

    async def exec(self, request: ExecRequest) -> ProcessHandle:
        """Start `request.cmd` in the container with the requested stdio."""

    async def attach(self, request: AttachRequest) -> ProcessHandle:
        """Attach to the container's main process."""

    async def port_forward(self, pod_sandbox_id: str, port: int) -> socket.socket:
        """Return a socket connected to localhost:`port` inside the pod's network namespace."""
