"""The Docker API's HTTP/1.1 plumbing over h11: requests, responses, hijacked connections.

One blocking h11 connection per client thread: the handlers call the domain (pulls, pod
creation) synchronously, and a hijacked connection (attach, exec) keeps its thread for the
session. Bodies are read whole up to MAX_BODY before the handler runs, so a handler never
sees a half-read or oversized body; a route that takes uploads (build contexts, image
archives, `cp` tars) instead reads its body as a `BodyStream` (crid/docker/body.py) with
the upload limit.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h11

from crid.docker.body import BodyStream
from crid.docker.errors import BadRequest
from crid.docker.versions import API_VERSION

MAX_HEAD = 64 * 1024
MAX_BODY = 4 * 1024 * 1024  # a create body with every option set is a few KiB
READ_SIZE = 65536
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 << 20
_TRUE = ("1", "true", "True", "yes")


@dataclass
class Request:
    """One request, its body read; `path` is without the /v1.NN prefix."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: list[tuple[str, str]]  # names lowercased
    body: bytes
    version: str  # the API version the client asked for ("" = none in the path)
    params: dict[str, str] = field(default_factory=dict)  # from the route's pattern
    stream: BodyStream | None = None  # the body of a streams_body route, unread
    peer_gone: Callable[[], bool] = lambda: False  # the client closed its connection

    def body_stream(self) -> BodyStream:
        """The body of an upload route, to read incrementally or spool."""
        assert self.stream is not None, "the route was not registered with streams_body"
        return self.stream

    def header(self, name: str) -> str:
        return ", ".join(v for n, v in self.headers if n == name)

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.arg(name)
        return default if value == "" else value in _TRUE

    def int_arg(self, name: str, default: int | None = None) -> int | None:
        value = self.arg(name)
        if value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise BadRequest(f"query parameter {name}={value[:40]!r} is not an integer") from None

    def json(self, default: Any = None) -> Any:
        """The body as JSON (`default` when empty).

        Raises:
            BadRequest: the body is not JSON.
        """
        if not self.body.strip():
            return default
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRequest(f"request body is not valid JSON: {e}") from None

    def json_arg(self, name: str) -> Any:
        """A query parameter holding JSON (Docker's `filters`), None when absent."""
        value = self.arg(name)
        if not value:
            return None
        try:
            return json.loads(value)
        except ValueError:
            raise BadRequest(f"query parameter {name} is not valid JSON") from None

    @property
    def wants_upgrade(self) -> bool:
        return "upgrade" in self.header("connection").lower()


@dataclass
class Response:
    """A response; `body` bytes are sent with a length, an iterator chunked (a stream)."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    content_type: str = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(value).encode() + b"\n")


def empty(status: int = 204) -> Response:
    return Response(status, b"", content_type="")


@dataclass
class Hijack:
    """Take the connection over after the response head: `serve(sock, leftover)` owns the
    socket until it returns (it closes nothing; the server closes the socket after)."""

    serve: Callable[[socket.socket, bytes], None]
    content_type: str = "application/vnd.docker.raw-stream"


Handler = Callable[[Request], "Response | Hijack"]


class HttpConnection:
    """One client connection: reads requests, writes responses (h11 state machine)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self._head_headers: list[tuple[bytes, bytes]] = []

    def next_head(self) -> h11.Request | None:
        """The next request's head (its body still unread); None when the client closed.

        Raises:
            BadRequest: malformed HTTP (the connection is unusable).
        """
        while True:
            event = self._next_event()
            if isinstance(event, h11.Request):
                self._head_headers = list(event.headers)
                return event
            if isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None

    def read_body(self, limit: int = MAX_BODY) -> bytes:
        """The whole body of the request whose head was read.

        Raises:
            BadRequest: malformed HTTP; BodyTooLarge: past `limit`.
        """
        return self.body_stream(limit, None).read_all()

    def body_stream(self, limit: int, spool_dir: Path | None) -> BodyStream:
        """The body of the request whose head was read, as a stream of at most `limit`.

        Raises:
            BodyTooLarge: its Content-Length is past `limit`.
        """
        return BodyStream(self._next_event, limit, spool_dir or Path("/nonexistent"),
                          declared=self._declared_length())

    def peer_gone(self) -> bool:
        """Whether the client closed the connection (a build it started is cancelled)."""
        poller = select.poll()
        poller.register(self.sock, select.POLLHUP | select.POLLERR)
        # POLLHUP alone: a client that only half-closed (CloseWrite) still reads the reply.
        return any(ev & (select.POLLHUP | select.POLLERR) for _, ev in poller.poll(0))

    def linger(self) -> None:
        """Before closing a connection whose request body was left unread (an error reply to
        an upload): stop writing and drop what the client still sends for a moment, so it
        reads the reply instead of a broken pipe (nginx's lingering close)."""
        if self._conn.their_state is not h11.SEND_BODY:
            return
        self.sock.shutdown(socket.SHUT_WR)
        self.sock.settimeout(LINGER_SECONDS)
        dropped = 0
        with contextlib.suppress(OSError):
            while dropped < LINGER_BYTES and (data := self.sock.recv(READ_SIZE)):
                dropped += len(data)

    def _next_event(self) -> h11.Event | type[h11.PAUSED]:
        while True:
            try:
                event = self._conn.next_event()
            except h11.RemoteProtocolError as e:
                raise BadRequest(f"bad HTTP request: {e}") from None
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            if self._conn.they_are_waiting_for_100_continue:
                # curl and others wait for this before sending a large body.
                self._write(self._conn.send(h11.InformationalResponse(status_code=100,
                                                                      headers=[])))
            self._conn.receive_data(self.sock.recv(READ_SIZE))

    def _declared_length(self) -> int | None:
        for name, value in self._head_headers:
            if name == b"content-length":
                return int(value)
        return None

    @property
    def leftover(self) -> bytes:
        """Bytes the client sent past the request (a hijacked stream's first input)."""
        data, _ = self._conn.trailing_data
        return bytes(data)

    def send(self, resp: Response, head_only: bool = False) -> None:
        headers = [("api-version", API_VERSION_HEADER), ("server", SERVER_HEADER),
                   *resp.headers]
        if resp.content_type:
            headers.append(("content-type", resp.content_type))
        if isinstance(resp.body, bytes):
            headers.append(("content-length", str(len(resp.body))))
        self._write(self._conn.send(h11.Response(status_code=resp.status, headers=headers)))
        if isinstance(resp.body, bytes):
            if resp.body and not head_only:
                self._write(self._conn.send(h11.Data(data=resp.body)))
        else:
            for chunk in _chunks(resp.body):
                self._write(self._conn.send(h11.Data(data=chunk)))
        self._write(self._conn.send(h11.EndOfMessage()))

    def send_hijack_head(self, upgrade: bool, content_type: str) -> None:
        """The head of a hijacked response: 101 for `Upgrade: tcp`, else 200 and raw bytes
        until close (what docker-py's non-upgrading exec start reads)."""
        if upgrade:
            head = (f"HTTP/1.1 101 UPGRADED\r\nContent-Type: {content_type}\r\n"
                    "Connection: Upgrade\r\nUpgrade: tcp\r\n"
                    f"Api-Version: {API_VERSION_HEADER}\r\n\r\n")
        else:
            head = (f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
                    f"Api-Version: {API_VERSION_HEADER}\r\nConnection: close\r\n\r\n")
        self.sock.sendall(head.encode())

    def reusable(self) -> bool:
        """Whether another request may follow on this connection (keep-alive)."""
        if self._conn.our_state is h11.DONE and self._conn.their_state is h11.DONE:
            self._conn.start_next_cycle()
            return True
        return False

    def _write(self, data: bytes | None) -> None:
        if data:
            self.sock.sendall(data)


def _chunks(body: Iterable[bytes]) -> Iterator[bytes]:
    iterator = iter(body)
    try:
        for chunk in iterator:
            if chunk:
                yield chunk
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def split_target(target: str) -> tuple[str, dict[str, list[str]]]:
    path, _, query = target.partition("?")
    return urllib.parse.unquote(path), urllib.parse.parse_qs(query, keep_blank_values=True)


API_VERSION_HEADER = API_VERSION
SERVER_HEADER = "crid"
