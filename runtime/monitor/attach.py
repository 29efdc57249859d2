"""Attach socket: the monitor's listening side helpers and a client for callers.

The wire format is documented in ``runtime.monitor.framing``. Unix socket paths are limited to
108 bytes; long paths are reached through ``/proc/self/fd/<dirfd>/<name>`` so the caller never
needs to chdir (crid is multi-threaded).
"""

from __future__ import annotations

import json
import os
import socket

from runtime.monitor import framing
from runtime.sockpath import short_path


def listen_unix(path: str, backlog: int = 16) -> socket.socket:
    """Bind and listen on ``path`` (replacing a stale socket file), mode 0600."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    with short_path(path) as p:
        sock.bind(p)
    os.chmod(path, 0o600)
    sock.listen(backlog)
    return sock


def connect_unix(path: str, timeout: float | None = None) -> socket.socket:
    """Connect to the unix socket at ``path``. Raises OSError."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        with short_path(path) as p:
            sock.connect(p)
    except OSError:
        sock.close()
        raise
    return sock


class AttachClient:
    """A client of a monitor's attach socket.

    ``read_frame`` returns ``(kind, payload)`` or None at EOF; output kinds are
    ``framing.STDOUT``/``STDERR``/``EXIT``. Raises OSError (connect, timeouts) and
    ``framing.FrameError``.
    """

    def __init__(self, path: str, timeout: float | None = None) -> None:
        self.sock = connect_unix(path, timeout)
        self._reader = framing.FrameReader()
        self._pending: list[tuple[int, bytes]] = []

    def send_stdin(self, data: bytes) -> None:
        self.sock.sendall(framing.encode(framing.STDIN, data))

    def close_stdin(self) -> None:
        self.sock.sendall(framing.encode(framing.CLOSE_STDIN))

    def resize(self, rows: int, cols: int) -> None:
        self.sock.sendall(framing.encode_resize(rows, cols))

    def request_reopen(self) -> None:
        self.sock.sendall(framing.encode(framing.REOPEN_LOG))

    def read_frame(self) -> tuple[int, bytes] | None:
        while not self._pending:
            data = self.sock.recv(65536)
            if not data:
                return None
            self._pending.extend(self._reader.feed(data))
        return self._pending.pop(0)

    def read_until_exit(self) -> tuple[bytes, bytes, dict | None]:
        """Collect stdout, stderr and the exit record until the monitor closes."""
        out, err, exit_record = bytearray(), bytearray(), None
        while (frame := self.read_frame()) is not None:
            kind, payload = frame
            if kind == framing.STDOUT:
                out += payload
            elif kind == framing.STDERR:
                err += payload
            elif kind == framing.EXIT:
                exit_record = json.loads(payload)
        return bytes(out), bytes(err), exit_record

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> AttachClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def reopen_log(path: str, timeout: float = 5.0) -> None:
    """Ask the monitor behind attach socket ``path`` to reopen its log file; wait for it.

    Raises OSError when the monitor is unreachable or reports a failure.
    """
    with AttachClient(path, timeout) as client:
        client.request_reopen()
        while (frame := client.read_frame()) is not None:
            kind, payload = frame
            if kind == framing.REOPENED:
                if payload:
                    raise OSError(f"reopening log via {path}: {payload.decode()}")
                return
        raise OSError(f"reopening log via {path}: monitor closed the connection")
