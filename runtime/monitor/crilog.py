"""CRI log file writer: ``<RFC3339Nano> <stdout|stderr> <P|F> <text>\\n`` per record.

Like conmon, each chunk read from the container is split on newlines: complete lines are
written with tag ``F``, and a trailing piece without a newline (a line longer than the read
buffer, a prompt, or output cut by EOF) is written at once with tag ``P``; the kubelet joins
``P`` records with the following records of the same stream.
"""

from __future__ import annotations

import os

from runtime.monitor.exitfile import rfc3339_nano

READ_SIZE = 16 * 1024
_STREAMS = {1: b"stdout", 2: b"stderr"}


def format_records(stream: int, chunk: bytes, timestamp: str) -> bytes:
    """The log records for one chunk of output read from ``stream`` (1 stdout, 2 stderr)."""
    prefix = timestamp.encode() + b" " + _STREAMS[stream] + b" "
    lines = chunk.split(b"\n")
    tail = lines.pop()  # b"" when the chunk ended with a newline
    out = [prefix + b"F " + line + b"\n" for line in lines]
    if tail:
        out.append(prefix + b"P " + tail + b"\n")
    return b"".join(out)


class CriLogWriter:
    """Appends records to the CRI log file; ``reopen`` after the kubelet rotated it.

    ``fd``: the file already opened (by the monitor's set-up child), else it is opened here.
    """

    def __init__(self, path: str, fd: int | None = None) -> None:
        self.path = path
        self._fd = self._open() if fd is None else fd

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def fileno(self) -> int:
        return self._fd

    def write(self, stream: int, chunk: bytes) -> None:
        """Log one chunk of output. A full disk drops the records rather than the container."""
        data = format_records(stream, chunk, rfc3339_nano())
        try:
            os.write(self._fd, data)
        except OSError:
            pass

    def reopen(self) -> None:
        """Open the path afresh (the old file was renamed away). Raises OSError."""
        fd = self._open()
        os.close(self._fd)
        self._fd = fd

    def close(self) -> None:
        os.close(self._fd)
