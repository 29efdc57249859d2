"""The HTTP/1.1 part of a streaming connection (h11): one request, then an upgrade or an error."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import h11

from crid.streaming.protocol.errors import ProtocolError

MAX_HEAD = 16 * 1024
_REASONS = {400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found"}


@dataclass(frozen=True)
class HttpRequest:
    method: str
    target: str
    headers: list[tuple[str, str]]  # names lowercased

    def get(self, name: str) -> str:
        return ", ".join(v for n, v in self.headers if n == name)

    def tokens(self, name: str) -> list[str]:
        """All comma-separated values of a header, over every line of it."""
        return [t.strip() for n, v in self.headers if n == name for t in v.split(",") if t.strip()]

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


async def read_request(reader: asyncio.StreamReader,
                       conn: h11.Connection) -> tuple[HttpRequest, bytes]:
    """Read one request head and body (ignored); return it and the bytes after it.

    Raises:
        ProtocolError: malformed HTTP, or the connection ended first.
    """
    request: HttpRequest | None = None
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as e:
            raise ProtocolError(f"bad HTTP request: {e}") from e
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            conn.receive_data(data)
        elif isinstance(event, h11.Request):
            if sum(len(n) + len(v) for n, v in event.headers) > MAX_HEAD:
                raise ProtocolError(f"HTTP request headers larger than {MAX_HEAD} bytes")
            request = HttpRequest(
                event.method.decode("latin-1"), event.target.decode("latin-1"),
                [(n.decode("latin-1").lower(), v.decode("latin-1")) for n, v in event.headers])
        elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
            break
        elif isinstance(event, h11.ConnectionClosed):
            raise ProtocolError("connection closed before a complete HTTP request")
    if request is None:
        raise ProtocolError("connection closed before a complete HTTP request")
    trailing, _ = conn.trailing_data
    return request, bytes(trailing)


def error_response(conn: h11.Connection, status: int, message: str) -> bytes:
    body = (message + "\n").encode()
    head = conn.send(h11.Response(status_code=status, reason=_REASONS.get(status, b""), headers=[
        ("content-type", "text/plain; charset=utf-8"), ("content-length", str(len(body))),
        ("connection", "close")]))
    return (head or b"") + (conn.send(h11.Data(data=body)) or b"") + \
        (conn.send(h11.EndOfMessage()) or b"")


def switching_response(conn: h11.Connection, headers: list[tuple[str, str]]) -> bytes:
    return conn.send(h11.InformationalResponse(status_code=101, headers=headers,
                                               reason=b"Switching Protocols")) or b""
