"""RFC 6455 WebSocket over an asyncio stream, framed by wsproto (sans-IO).

The HTTP handshake is done by the server/client modules with h11; this module runs the
frame-level `wsproto.connection.Connection` afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from crid.streaming.protocol.errors import ProtocolError, SessionClosed
from crid.streaming.protocol.transport import StreamTransport

MAX_MESSAGE = 16 * 1024 * 1024
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455, section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


class WebSocket:
    """A message-level WebSocket: `recv` whole messages, `send` binary or text."""

    def __init__(self, io: StreamTransport, client: bool) -> None:
        self.io = io
        self._conn = Connection(ConnectionType.CLIENT if client else ConnectionType.SERVER)
        self._pending: list[tuple[bool, bytes]] = []
        self._partial = bytearray()
        self._closed = False
        self.peer_closed = False  # a close frame came; False when the socket just ended

    @property
    def last_activity(self) -> float:
        return self.io.last_activity

    async def recv(self) -> tuple[bool, bytes] | None:
        """Next message as (is_text, payload); None once the peer closed or the socket ended.

        Raises:
            ProtocolError: bad framing, or a message past MAX_MESSAGE.
        """
        while not self._pending:
            if self._closed:
                return None
            data = await self.io.read_chunk()
            try:
                self._conn.receive_data(data or None)
                self._collect()
            except RemoteProtocolError as e:
                self._closed = True
                raise ProtocolError(f"WebSocket framing: {e}") from e
            if not data:
                self._closed = True
        return self._pending.pop(0)

    def _collect(self) -> None:
        for event in self._conn.events():
            if isinstance(event, Message):
                payload = event.data.encode() if isinstance(event, TextMessage) else event.data
                if event.message_finished and not self._partial:  # the common case: no copy
                    self._pending.append((isinstance(event, TextMessage), bytes(payload)))
                    continue
                self._partial += payload
                if len(self._partial) > MAX_MESSAGE:
                    raise ProtocolError(f"WebSocket message over {MAX_MESSAGE} bytes")
                if event.message_finished:
                    self._pending.append((isinstance(event, TextMessage), bytes(self._partial)))
                    self._partial.clear()
            elif isinstance(event, Ping):
                self._send_raw(self._conn.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.peer_closed = True
                if self._conn.state == ConnectionState.REMOTE_CLOSING:
                    self._send_raw(self._conn.send(event.response()))
                self._closed = True

    def _send_raw(self, data: bytes) -> None:
        try:
            self.io.write(data)
        except SessionClosed:
            self._closed = True

    def send(self, data: bytes, text: bool = False) -> None:
        """Queue one message (call `drain` for backpressure). Raises SessionClosed."""
        if self._conn.state != ConnectionState.OPEN:
            raise SessionClosed("WebSocket is closed")
        msg = TextMessage(data.decode()) if text else BytesMessage(data)
        self.io.write(self._conn.send(msg))

    async def drain(self) -> None:
        await self.io.drain()

    async def close(self, code: int = 1000, reason: str = "", linger: float = 2.0) -> None:
        """Send a close frame (if still open), wait up to `linger` seconds for the peer's
        close (RFC 6455, 7.1.1: closing with unread input would reset the TCP connection and
        could destroy output the peer has not read yet), then close the socket."""
        try:
            if self._conn.state == ConnectionState.OPEN:
                self.io.write(self._conn.send(CloseConnection(code=code, reason=reason)))
                await asyncio.wait_for(self.io.drain(), 5)
                await asyncio.wait_for(self._until_closed(), linger)
        except (LocalProtocolError, SessionClosed, ProtocolError, TimeoutError):
            pass
        self._closed = True
        self.io.close()

    async def _until_closed(self) -> None:
        self._pending.clear()
        while await self.recv() is not None:
            self._pending.clear()


class WebSocketTransport:
    """The bytes of a SPDY session carried in binary WebSocket messages (SPDY/3.1+...)."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self._buf = bytearray()

    @property
    def last_activity(self) -> float:
        return self.ws.last_activity

    async def read_chunk(self) -> bytes:
        if self._buf:
            out = bytes(self._buf)
            self._buf.clear()
            return out
        msg = await self.ws.recv()
        return b"" if msg is None else msg[1]

    async def readexactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            msg = await self.ws.recv()
            if msg is None:
                partial = bytes(self._buf)
                self._buf.clear()
                raise asyncio.IncompleteReadError(partial, n)
            self._buf += msg[1]
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def write(self, data: bytes | memoryview) -> None:
        self.ws.send(bytes(data))

    async def drain(self) -> None:
        await self.ws.drain()

    def close(self) -> None:
        self.ws.io.close()
