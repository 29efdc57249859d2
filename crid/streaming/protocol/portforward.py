"""Port forwarding over SPDY (`portforward.k8s.io`), directly or tunnelled in a WebSocket.

Per forwarded connection the client opens an `error` and a `data` stream, both carrying `port`
and `requestID` headers. The server connects to the port inside the pod, copies bytes both ways
(half-closes included), and writes a message to the error stream if anything fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable

from crid.streaming.protocol.errors import BackendError, ProtocolError, SessionClosed
from crid.streaming.protocol.spdy import frames as F
from crid.streaming.protocol.spdy.session import SpdySession
from crid.streaming.protocol.spdy.stream import SpdyStream

PROTOCOL = "portforward.k8s.io"
WS_TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
CHUNK = 256 * 1024

Connect = Callable[[int], Awaitable[socket.socket]]


def request_id(stream: SpdyStream, kind: str) -> str:
    """The pairing key; old clients omit requestID and pair by stream id (error = data - 2)."""
    rid = stream.headers.get("requestid")
    if rid:
        return rid
    return str(stream.id if kind == "error" else stream.id - 2)


def parse_port(stream: SpdyStream) -> int:
    raw = stream.headers.get("port", "")
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ProtocolError(f"port forward stream {stream.id} has invalid port {raw!r}")
    return int(raw)


async def _copy_to_socket(data: SpdyStream, writer: asyncio.StreamWriter) -> None:
    while chunk := await data.read():
        writer.write(chunk)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()


async def _copy_from_socket(reader: asyncio.StreamReader, data: SpdyStream) -> None:
    while chunk := await reader.read(CHUNK):
        await data.write(chunk)
    await data.close_write()


async def forward_pair(error: SpdyStream, data: SpdyStream, pod: str, allowed: tuple[int, ...],
                       connect: Connect) -> None:
    """Serve one forwarded connection until both directions are done."""
    port = parse_port(data)
    writer = None
    try:
        if allowed and port not in allowed:
            raise BackendError(f"port {port} was not requested for this session")
        sock = await connect(port)
        reader, writer = await asyncio.open_connection(sock=sock, limit=CHUNK)
        await asyncio.gather(_copy_to_socket(data, writer), _copy_from_socket(reader, data))
    except (BackendError, OSError) as e:
        with contextlib.suppress(SessionClosed):
            await error.write(f"error forwarding port {port} to pod {pod}: {e}".encode())
        data.reset(F.RstStatus.CANCEL)
    except SessionClosed:
        pass
    finally:
        if writer is not None:
            writer.close()
        await error.close_write()


async def serve_spdy_port_forward(session: SpdySession, pod: str, allowed: tuple[int, ...],
                                  connect: Connect, creation_timeout: float) -> None:
    """Pair streams as they arrive and forward each pair, until the session ends.

    Raises:
        ProtocolError: a stream with an unknown type, a bad port or a repeated request id.
    """
    pending: dict[str, dict[str, SpdyStream]] = {}
    tasks: set[asyncio.Task[None]] = set()
    closed = asyncio.ensure_future(session.closed.wait())
    loop = asyncio.get_running_loop()
    try:
        while True:
            get = asyncio.ensure_future(session.incoming.get())
            done, _ = await asyncio.wait({get, closed}, return_when=asyncio.FIRST_COMPLETED)
            if get not in done:
                get.cancel()
                return
            stream = get.result()
            kind = stream.headers.get("streamtype", "")
            if kind not in ("error", "data"):
                raise ProtocolError(f"unexpected port forward stream type {kind!r}")
            parse_port(stream)
            rid = request_id(stream, kind)
            pair = pending.setdefault(rid, {})
            if kind in pair:
                raise ProtocolError(f"second {kind} stream for port forward request {rid}")
            pair[kind] = stream
            if len(pair) == 1:
                loop.call_later(creation_timeout, _expire, pending, rid, pair)
                continue
            del pending[rid]
            task = asyncio.ensure_future(forward_pair(pair["error"], pair["data"], pod, allowed,
                                                      connect))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    finally:
        closed.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _expire(pending: dict[str, dict[str, SpdyStream]], rid: str,
            pair: dict[str, SpdyStream]) -> None:
    # The kubelet drops a half-created pair after the stream creation timeout.
    if pending.get(rid) is pair:
        del pending[rid]
        for stream in pair.values():
            stream.reset(F.RstStatus.REFUSED_STREAM)
