"""JSON-line messages between spawn_init / exec_in and the child they fork.

The child reports progress ("userns", "pid", "ready") or an "error" with text; the parent
answers ("mapped", "go"). A closed channel without "ready" means the child died.
"""

from __future__ import annotations

import fcntl
import json
import socket
from typing import Any

from runtime.errors import InitError, OCIRuntimeError, UnsupportedMount


class Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = b""

    def send_error(self, e: BaseException) -> None:
        """An "error" message: the text, and the named type where the other side rebuilds
        one (see ``error_of``)."""
        if isinstance(e, InitError):
            self.send("error", message=str(e))
        elif isinstance(e, UnsupportedMount):
            self.send("error", message=str(e), error_type=type(e).__name__)
        else:
            self.send("error", message=f"{type(e).__name__}: {e}")

    def send(self, kind: str, **fields: Any) -> None:
        self.sock.sendall(json.dumps({"type": kind, **fields}).encode() + b"\n")

    def recv(self) -> dict[str, Any]:
        """Next message; raises InitError when the other side closed first."""
        while b"\n" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise InitError("container init exited before finishing set-up")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def recv_or_eof(self) -> dict[str, Any] | None:
        """Next message, or None when the other side closed (or exec'ed) without sending one."""
        try:
            return self.recv()
        except InitError:
            return None

    def expect(self, kind: str) -> dict[str, Any]:
        """Receive a message of that kind; an "error" message raises InitError with its text."""
        msg = self.recv()
        if msg["type"] == "error":
            raise error_of(msg)
        if msg["type"] != kind:
            raise InitError(f"init protocol: expected {kind!r}, got {msg['type']!r}")
        return msg

    def close(self) -> None:
        self.sock.close()

    def move_above(self, low: int) -> None:
        """Renumber the socket to an fd >= ``low`` (still close-on-exec), leaving the fds
        below it free for those the process is given."""
        if self.sock.fileno() >= low:
            return
        fd = fcntl.fcntl(self.sock.fileno(), fcntl.F_DUPFD_CLOEXEC, low)
        self.sock.close()
        self.sock = socket.socket(fileno=fd)


def pair() -> tuple[Channel, Channel]:
    """(parent end, child end); both close-on-exec."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return Channel(a), Channel(b)


def error_of(msg: dict[str, Any]) -> OCIRuntimeError:
    """The exception an "error" message stands for: UnsupportedMount by name, else InitError."""
    if msg.get("error_type") == UnsupportedMount.__name__:
        return UnsupportedMount(msg["message"])
    return InitError(msg["message"])
