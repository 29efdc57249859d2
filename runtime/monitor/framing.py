"""The attach socket's wire format: one documented frame layout, both directions.

Every frame is a 5-byte header followed by ``length`` payload bytes::

    +--------+------------------------+-----------------+
    | kind:1 | length:4 (big endian)  | payload         |
    +--------+------------------------+-----------------+

Kinds, client -> monitor:
    STDIN (0)        bytes for the container's stdin
    RESIZE (3)       payload ``!HH`` = rows, columns (terminal containers)
    CLOSE_STDIN (4)  the client's stdin reached EOF (honoured when the container is stdin_once)
    REOPEN_LOG (5)   reopen the CRI log file (after the kubelet renamed it); answered by REOPENED
Kinds, monitor -> client:
    STDOUT (1), STDERR (2)   container output, as read
    EXIT (6)         JSON exit record (see ``runtime.monitor.exitfile``); the monitor then closes
    REOPENED (7)     the log file has been reopened (payload empty, or an error text)
Every connected client receives every output frame; any client may write stdin.
"""

from __future__ import annotations

import struct

STDIN = 0
STDOUT = 1
STDERR = 2
RESIZE = 3
CLOSE_STDIN = 4
REOPEN_LOG = 5
EXIT = 6
REOPENED = 7

HEADER = struct.Struct("!BI")
RESIZE_PAYLOAD = struct.Struct("!HH")
MAX_PAYLOAD = 1 << 20


class FrameError(ValueError):
    """A peer sent a frame that breaks the format (unknown kind, oversized payload)."""


def encode(kind: int, payload: bytes = b"") -> bytes:
    """One frame as bytes."""
    return HEADER.pack(kind, len(payload)) + payload


def encode_resize(rows: int, cols: int) -> bytes:
    """A RESIZE frame for a terminal of ``rows`` x ``cols``."""
    return encode(RESIZE, RESIZE_PAYLOAD.pack(rows, cols))


class FrameReader:
    """Incremental decoder: ``feed`` bytes as they arrive, get whole frames back."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Append ``data``; return the frames completed by it. Raises FrameError."""
        self._buf += data
        frames = []
        while len(self._buf) >= HEADER.size:
            kind, length = HEADER.unpack_from(self._buf)
            if kind > REOPENED or length > MAX_PAYLOAD:
                raise FrameError(f"bad attach frame: kind {kind}, length {length}")
            end = HEADER.size + length
            if len(self._buf) < end:
                break
            frames.append((kind, bytes(self._buf[HEADER.size:end])))
            del self._buf[:end]
        return frames
