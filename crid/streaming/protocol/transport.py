"""Byte transports under the SPDY session: a TCP/TLS stream, or a WebSocket tunnel.

Each records `last_activity` (loop time of the last byte read or written) for the idle timeout.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from crid.streaming.protocol.errors import SessionClosed

READ_CHUNK = 256 * 1024


class ByteTransport(Protocol):
    @property
    def last_activity(self) -> float:
        """Loop time of the last byte moved."""

    async def readexactly(self, n: int) -> bytes:
        """Exactly n bytes. Raises asyncio.IncompleteReadError at EOF."""

    async def read_chunk(self) -> bytes:
        """Some bytes, b"" at EOF."""

    def write(self, data: bytes | memoryview) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...


class StreamTransport:
    """An asyncio stream pair plus the bytes already read past the HTTP request."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 initial: bytes = b"") -> None:
        self.reader, self.writer = reader, writer
        self._buf = bytearray(initial)
        self._loop = asyncio.get_running_loop()
        self.last_activity = self._loop.time()
        self.eof_sent = False

    async def read_chunk(self) -> bytes:
        if self._buf:
            out = bytes(self._buf)
            self._buf.clear()
            return out
        try:
            data = await self.reader.read(READ_CHUNK)
        except (ConnectionError, OSError):
            data = b""
        self.last_activity = self._loop.time()
        return data

    async def readexactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            try:
                chunk = await self.reader.read(max(READ_CHUNK, n - len(self._buf)))
            except (ConnectionError, OSError):
                chunk = b""
            self.last_activity = self._loop.time()
            if not chunk:
                partial = bytes(self._buf)
                self._buf.clear()
                raise asyncio.IncompleteReadError(partial, n)
            if not self._buf and len(chunk) == n:
                return chunk
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def write(self, data: bytes | memoryview) -> None:
        if self.writer.is_closing() or self.eof_sent:
            raise SessionClosed("writing to a closed connection")
        self.writer.write(data)
        self.last_activity = self._loop.time()

    async def drain(self) -> None:
        try:
            await self.writer.drain()
        except (ConnectionError, OSError) as e:
            raise SessionClosed(f"connection lost: {e}") from e

    def close(self) -> None:
        self.writer.close()

    def write_eof(self) -> bool:
        """Half-close (not possible over TLS); True if done."""
        if self.eof_sent or not self.writer.can_write_eof():
            return False
        self.eof_sent = True
        self.writer.write_eof()
        return True

    def abort(self) -> None:
        self.writer.transport.abort()
