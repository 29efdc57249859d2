"""Request bodies read as they arrive: a build context, a `docker load` archive, a `cp` tar.

A route registered with `streams_body=True` gets its body as a `BodyStream`, a binary
file-like over h11's Data events that stops at a size limit. The handler reads it
incrementally (tarfile's stream mode) or `spool()`s it to an unnamed temporary file under
crid's root when it needs to seek; an unnamed file (O_TMPFILE) vanishes with its last fd,
so a daemon killed mid-upload leaves nothing on disk.
"""

from __future__ import annotations

import io
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import h11

from crid.docker.errors import BadRequest, BodyTooLarge

READ_SIZE = 65536

# Next h11 event of the connection (reading the socket as needed); raises BadRequest.
NextEvent = Callable[[], "h11.Event | type[h11.PAUSED]"]


class BodyStream(io.RawIOBase):
    """The request body, read on demand; at most `limit` bytes, else BodyTooLarge."""

    def __init__(self, next_event: NextEvent, limit: int, spool_dir: Path,
                 declared: int | None = None) -> None:
        super().__init__()
        if declared is not None and declared > limit:
            # Refused from the header alone: nothing of a 10 GB upload is read or stored.
            raise BodyTooLarge(f"request body of {declared} bytes is larger than the "
                               f"limit of {limit} bytes")
        self._next, self._limit, self._spool_dir = next_event, limit, spool_dir
        self._pending = b""
        self._read = 0
        self._done = False

    @property
    def done(self) -> bool:
        """Whether the whole body has been read (the connection may be reused)."""
        return self._done and not self._pending

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._done:
            self._pull()
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def read_all(self) -> bytes:
        return self.read() or b""

    def drain(self) -> None:
        """Reads and drops the rest (so a small unread body does not end keep-alive)."""
        while self.read(READ_SIZE):
            pass

    def spool(self) -> IO[bytes]:
        """The whole body in a seekable unnamed temp file under crid's root, at offset 0.

        Raises:
            BodyTooLarge, BadRequest: past the limit, or a malformed body; nothing kept.
        """
        self._spool_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        f = tempfile.TemporaryFile(dir=self._spool_dir)
        try:
            shutil.copyfileobj(self, f, READ_SIZE)
            f.seek(0)
        except BaseException:
            f.close()
            raise
        return f

    def _pull(self) -> None:
        event = self._next()
        if isinstance(event, h11.Data):
            self._read += len(event.data)
            if self._read > self._limit:
                self._done = True  # the connection is closed after the error reply
                raise BodyTooLarge(f"request body larger than the limit of {self._limit} "
                                   "bytes")
            self._pending = bytes(event.data)
        elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
            self._done = True
        elif isinstance(event, h11.ConnectionClosed):
            self._done = True
            raise BadRequest("the client closed the connection before the body ended")
