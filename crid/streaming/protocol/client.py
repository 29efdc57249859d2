"""Client side of the streaming protocols (for cridctl and the tests).

- `exec_spdy(url, io)`: remotecommand over SPDY/3.1 (what crictl and the kubelet speak);
  attach uses the same call on an attach URL.
- `exec_websocket(url, io, protocol)`: remotecommand over WebSocket (v5 by default, or v4/base64).
- `PortForwarder.connect(url, websocket=False)`: a port-forward session over SPDY, or SPDY
  tunnelled in a WebSocket (`SPDY/3.1+portforward.k8s.io`); `open(port)` gives a byte stream.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import ssl as ssl_mod
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import h11

from crid.streaming.protocol import portforward, remotecommand, wschannels
from crid.streaming.protocol.errors import ProtocolError, SessionClosed, StreamingError
from crid.streaming.protocol.requests import TerminalSize
from crid.streaming.protocol.spdy.session import SpdySession
from crid.streaming.protocol.spdy.stream import SpdyStream
from crid.streaming.protocol.status import decode_exit_code
from crid.streaming.protocol.transport import ByteTransport, StreamTransport
from crid.streaming.protocol.websocket import WebSocket, WebSocketTransport, accept_key

Output = Callable[[bytes], Any]


class UpgradeRefused(StreamingError):
    """The server answered the upgrade with an HTTP error (404 for a bad token)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body.strip()}")
        self.status, self.body = status, body


@dataclass
class CommandIO:
    """What the client sends and where output goes. `stdin` is bytes or an async iterable;
    stdout/stderr callbacks get each chunk (None = do not open that stream)."""

    stdin: bytes | AsyncIterable[bytes] | None = None
    stdout: Output | None = None
    stderr: Output | None = None
    tty: bool = False
    resizes: AsyncIterable[TerminalSize] | None = None


@dataclass
class CommandResult:
    exit_code: int
    status: dict[str, Any] | None
    protocol: str


async def _chunks(stdin: bytes | AsyncIterable[bytes]) -> AsyncIterable[bytes]:
    if isinstance(stdin, bytes | bytearray | memoryview):
        view = memoryview(stdin)
        for i in range(0, len(view), 256 * 1024):
            yield bytes(view[i:i + 256 * 1024])
    else:
        async for chunk in stdin:
            yield chunk


async def upgrade(url: str, method: str, headers: list[tuple[str, str]],
                  ssl: ssl_mod.SSLContext | None = None
                  ) -> tuple[StreamTransport, dict[str, str]]:
    """Send the upgrade request; return the raw connection and the 101's headers.

    Raises:
        UpgradeRefused: any other status. ProtocolError: a malformed reply.
    """
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    if secure and ssl is None:
        ssl = ssl_mod.create_default_context()
    reader, writer = await asyncio.open_connection(
        parts.hostname, parts.port or (443 if secure else 80), ssl=ssl if secure else None,
        limit=256 * 1024)
    conn = h11.Connection(h11.CLIENT)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    host = parts.netloc
    req_headers = [("host", host), *headers]
    if method == "POST":
        req_headers.append(("content-length", "0"))
    writer.write(conn.send(h11.Request(method=method, target=target, headers=req_headers)) or b"")
    writer.write(conn.send(h11.EndOfMessage()) or b"")
    status, reply, body = 0, {}, b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(65536))
        elif isinstance(event, h11.InformationalResponse | h11.Response):
            status = event.status_code
            reply = {n.decode().lower(): v.decode() for n, v in event.headers}
            if status == 101:
                break
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            writer.close()
            raise UpgradeRefused(status, body.decode(errors="replace"))
    rest, _ = conn.trailing_data
    return StreamTransport(reader, writer, bytes(rest)), reply


async def _ws_connect(url: str, protocols: list[str],
                      ssl: ssl_mod.SSLContext | None) -> tuple[WebSocket, str]:
    key = base64.b64encode(os.urandom(16)).decode()
    parts = urlsplit(url)
    http_url = url.replace("ws", "http", 1) if parts.scheme in ("ws", "wss") else url
    io, reply = await upgrade(http_url, "GET", [
        ("upgrade", "websocket"), ("connection", "Upgrade"), ("sec-websocket-key", key),
        ("sec-websocket-version", "13"), ("sec-websocket-protocol", ", ".join(protocols))], ssl)
    if reply.get("sec-websocket-accept") != accept_key(key):
        io.close()
        raise ProtocolError("WebSocket upgrade answered with a wrong Sec-WebSocket-Accept")
    chosen = reply.get("sec-websocket-protocol", "")
    if chosen not in protocols:
        io.close()
        raise ProtocolError(f"server chose WebSocket subprotocol {chosen!r}")
    return WebSocket(io, client=True), chosen


async def _spdy_connect(url: str, protocols: tuple[str, ...],
                        ssl: ssl_mod.SSLContext | None) -> tuple[SpdySession, str]:
    headers = [("connection", "Upgrade"), ("upgrade", "SPDY/3.1")]
    headers += [("x-stream-protocol-version", p) for p in protocols]
    io, reply = await upgrade(url, "POST", headers, ssl)
    return _start_session(io), reply.get("x-stream-protocol-version", "")


def _start_session(io: ByteTransport) -> SpdySession:
    session = SpdySession(io, client=True)
    session.announce_flow_control()
    return session


# ---- remotecommand -------------------------------------------------------------------------

async def _read_all(stream: SpdyStream, sink: Output | None) -> bytes:
    data = bytearray()
    while chunk := await stream.read():
        if sink is None:
            data += chunk
        else:
            sink(chunk)
    return bytes(data)


async def _send_stdin(stream: SpdyStream, stdin: bytes | AsyncIterable[bytes]) -> None:
    with contextlib.suppress(SessionClosed):
        async for chunk in _chunks(stdin):
            await stream.write(chunk)
        await stream.close_write()


async def _send_resizes(stream: SpdyStream, resizes: AsyncIterable[TerminalSize]) -> None:
    with contextlib.suppress(SessionClosed):
        async for size in resizes:
            await stream.write(_resize_json(size))


def _resize_json(size: TerminalSize) -> bytes:
    return json.dumps({"Width": size.width, "Height": size.height}).encode() + b"\n"


async def exec_spdy(url: str, io: CommandIO,
                    protocols: tuple[str, ...] = remotecommand.SPDY_PROTOCOLS,
                    ssl: ssl_mod.SSLContext | None = None) -> CommandResult:
    """Run an exec/attach session over SPDY as client-go's SPDY executor does.

    Raises:
        UpgradeRefused: bad token (404) or no common protocol (403). StreamingError: the
        session broke.
    """
    session, protocol = await _spdy_connect(url, protocols, ssl)
    runner = asyncio.ensure_future(session.run())
    try:
        return await _run_spdy_command(session, protocol or remotecommand.V1, io)
    finally:
        session.close()
        await asyncio.gather(runner, return_exceptions=True)


async def _run_spdy_command(session: SpdySession, protocol: str, io: CommandIO) -> CommandResult:
    kinds = ["error"]
    kinds += ["stdin"] if io.stdin is not None else []
    kinds += ["stdout"] if io.stdout is not None else []
    kinds += ["stderr"] if io.stderr is not None and not io.tty else []
    if io.tty and protocol in (remotecommand.V5, remotecommand.V4, remotecommand.V3):
        kinds.append("resize")
    opened = await asyncio.gather(*(session.open_stream({"streamtype": k}) for k in kinds))
    streams = dict(zip(kinds, opened, strict=True))
    for kind in ("stdout", "stderr", "error"):
        if kind in streams:  # the client never writes on these
            await streams[kind].close_write()
    side = []
    if "stdin" in streams:
        assert io.stdin is not None
        side.append(asyncio.ensure_future(_send_stdin(streams["stdin"], io.stdin)))
    if "resize" in streams and io.resizes is not None:
        side.append(asyncio.ensure_future(_send_resizes(streams["resize"], io.resizes)))
    readers = [asyncio.ensure_future(_read_all(streams[k], getattr(io, k)))
               for k in ("stdout", "stderr") if k in streams]
    try:
        error_payload = await _read_all(streams["error"], None)
        await asyncio.gather(*readers)
    finally:
        for task in side:
            task.cancel()
        await asyncio.gather(*side, return_exceptions=True)
    if session.error is not None:
        raise session.error
    if streams["error"].cut:  # client-go would read this as success; a test must not
        raise StreamingError("the connection ended before the exit status")
    code, status = decode_exit_code(error_payload)
    return CommandResult(code, status, protocol)


async def exec_websocket(url: str, io: CommandIO, protocol: str = remotecommand.V5,
                         ssl: ssl_mod.SSLContext | None = None) -> CommandResult:
    """Run an exec/attach over WebSocket (`v5.channel.k8s.io`, as client-go's WebSocket
    executor, or v4/base64 variants). Without v5, stdin cannot be half-closed."""
    ws, chosen = await _ws_connect(url, [protocol], ssl)
    binary, v5, _ = wschannels.WS_PROTOCOLS[chosen]
    sender = asyncio.ensure_future(_ws_send(ws, io, binary, v5))
    error = bytearray()
    try:
        while (msg := await ws.recv()) is not None:
            channel, data = wschannels.decode_ws_frame(msg[1], binary)
            out = {wschannels.STDOUT: io.stdout, wschannels.STDERR: io.stderr}.get(channel)
            if channel == wschannels.ERROR:
                error += data
            elif out is not None and data:
                out(data)
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        await ws.close()
    if not ws.peer_closed:
        raise StreamingError("the connection ended before the exit status")
    code, status = decode_exit_code(bytes(error))
    return CommandResult(code, status, chosen)


async def _ws_send(ws: WebSocket, io: CommandIO, binary: bool, v5: bool) -> None:
    async def resizes() -> None:
        assert io.resizes is not None
        async for size in io.resizes:
            ws.send(*wschannels.encode_ws_frame(wschannels.RESIZE, _resize_json(size),
                                                   binary))
            await ws.drain()

    with contextlib.suppress(SessionClosed):
        task = asyncio.ensure_future(resizes()) if io.resizes is not None else None
        if io.stdin is not None:
            async for chunk in _chunks(io.stdin):
                ws.send(*wschannels.encode_ws_frame(wschannels.STDIN, chunk, binary))
                await ws.drain()
            if v5:
                ws.send(bytes([wschannels.CLOSE, wschannels.STDIN]))
                await ws.drain()
        if task is not None:
            await task


# ---- port forwarding ------------------------------------------------------------------------

class ForwardedConnection:
    """One forwarded TCP connection: `read` (b"" at EOF), `write`, `close_write`, `error`."""

    def __init__(self, data: SpdyStream, error: SpdyStream) -> None:
        self.data, self.error_stream = data, error

    async def read(self) -> bytes:
        return await self.data.read()

    async def write(self, data: bytes) -> None:
        await self.data.write(data)

    async def close_write(self) -> None:
        await self.data.close_write()

    async def error(self) -> str:
        """The server's error message for this connection ("" if none); waits for its end."""
        return (await _read_all(self.error_stream, None)).decode(errors="replace")

    def close(self) -> None:
        self.data.reset()
        self.error_stream.reset()


class PortForwarder:
    """A port-forward session; `open(port)` forwards one connection."""

    def __init__(self, session: SpdySession) -> None:
        self.session = session
        self._runner = asyncio.ensure_future(session.run())
        self._next_request = 0

    @classmethod
    async def connect(cls, url: str, websocket: bool = False,
                      ssl: ssl_mod.SSLContext | None = None) -> PortForwarder:
        """Raises UpgradeRefused (404 for a bad token) or ProtocolError."""
        if websocket:
            ws, _ = await _ws_connect(url, [portforward.WS_TUNNEL_PROTOCOL], ssl)
            return cls(_start_session(WebSocketTransport(ws)))
        session, _ = await _spdy_connect(url, (portforward.PROTOCOL,), ssl)
        return cls(session)

    async def open(self, port: int) -> ForwardedConnection:
        rid = str(self._next_request)
        self._next_request += 1
        base = {"port": str(port), "requestid": rid}
        error = await self.session.open_stream({"streamtype": "error", **base})
        await error.close_write()  # as client-go: the client never writes on it
        data = await self.session.open_stream({"streamtype": "data", **base})
        return ForwardedConnection(data, error)

    async def close(self) -> None:
        self.session.close()
        await asyncio.gather(self._runner, return_exceptions=True)

    async def serve_local(self, port: int, host: str = "127.0.0.1",
                          local_port: int = 0) -> asyncio.base_events.Server:
        """Listen locally and forward each accepted connection to `port` in the pod."""
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                conn = await self.open(port)
            except StreamingError:
                writer.close()
                return
            await _splice(reader, writer, conn)
        return await asyncio.start_server(handle, host, local_port)


async def _splice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  conn: ForwardedConnection) -> None:
    async def up() -> None:
        while chunk := await reader.read(256 * 1024):
            await conn.write(chunk)
        await conn.close_write()

    async def down() -> None:
        while chunk := await conn.read():
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    try:
        await asyncio.gather(up(), down())
    except (StreamingError, ConnectionError, OSError):
        conn.close()
    finally:
        writer.close()
