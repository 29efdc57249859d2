"""The streaming HTTP server behind the Exec, Attach and PortForward URLs.

One asyncio loop (in its own thread when started with `start()`) serves every session. The
gRPC layer calls `request_exec/attach/port_forward`, which validate the request, store it under
a single-use token and return the URL; the client then upgrades that URL to SPDY/3.1 (POST) or a
WebSocket (GET).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import threading
from typing import Any

import h11
import structlog

from crid.streaming.protocol import portforward, remotecommand, wschannels
from crid.streaming.protocol.backend import StreamingBackend
from crid.streaming.protocol.errors import (
    BackendError,
    ProtocolError,
    SessionClosed,
    StreamingError,
)
from crid.streaming.protocol.http import (
    HttpRequest,
    error_response,
    read_request,
    switching_response,
)
from crid.streaming.protocol.options import StreamingOptions
from crid.streaming.protocol.requests import (
    AttachRequest,
    ExecRequest,
    PortForwardRequest,
    validate_attach,
    validate_exec,
    validate_port_forward,
)
from crid.streaming.protocol.spdy.frames import GoAwayStatus
from crid.streaming.protocol.spdy.session import SpdySession
from crid.streaming.protocol.tokens import TokenCache
from crid.streaming.protocol.transport import StreamTransport
from crid.streaming.protocol.websocket import WebSocket, WebSocketTransport, accept_key

log = structlog.get_logger("crid.streaming.protocol")

KINDS = ("exec", "attach", "portforward")
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class StreamingServer:
    """Serves streaming sessions for tokens handed out by `request_*`.

    Thread-safe: `request_*` may be called from any thread; sessions run on the server's loop.
    """

    def __init__(self, options: StreamingOptions, backend: StreamingBackend) -> None:
        self.options, self.backend = options, backend
        self.tokens = TokenCache(options.token_seconds, options.max_tokens)
        self._server: asyncio.base_events.Server | None = None
        self._conns: set[asyncio.Task[Any]] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.port = 0

    # ---- API for the gRPC layer ------------------------------------------------------------

    def request_exec(self, request: ExecRequest) -> str:
        """Validate and store an exec; return its URL. Raises RequestError."""
        return self._url("exec", self.tokens.put("exec", validate_exec(request)))

    def request_attach(self, request: AttachRequest) -> str:
        """Validate and store an attach; return its URL. Raises RequestError."""
        return self._url("attach", self.tokens.put("attach", validate_attach(request)))

    def request_port_forward(self, request: PortForwardRequest) -> str:
        """Validate and store a port forward; return its URL. Raises RequestError."""
        req = validate_port_forward(request)
        return self._url("portforward", self.tokens.put("portforward", req))

    @property
    def base_url(self) -> str:
        scheme = "https" if self.options.tls_cert else "http"
        host = self.options.address
        with contextlib.suppress(ValueError):
            ip = ipaddress.ip_address(host)
            if ip.is_unspecified:
                host = "127.0.0.1" if ip.version == 4 else "::1"
            if ip.version == 6:
                host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    @property
    def open_sessions(self) -> int:
        """Connections being served now (metrics read it from another thread: len of a set
        is atomic)."""
        return len(self._conns)

    def _url(self, kind: str, token: str) -> str:
        return f"{self.base_url}/{kind}/{token}"

    # ---- lifecycle -------------------------------------------------------------------------

    async def start_async(self) -> None:
        """Bind and serve on the running loop. Raises OSError if the address is taken."""
        ctx = None
        if self.options.tls_cert and self.options.tls_key:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(self.options.tls_cert, self.options.tls_key)
        self._server = await asyncio.start_server(
            self._accept, self.options.address, self.options.port, ssl=ctx, backlog=1024,
            limit=256 * 1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop_async(self) -> None:
        """Stop listening and end every session (exec'd processes are killed)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)

    def start(self) -> None:
        """Serve in a background thread with its own loop; returns once bound."""
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            try:
                await self.start_async()
            except BaseException as e:  # reported to the caller of start()
                failure.append(e)
                ready.set()
                return
            ready.set()
            await self._stop.wait()
            await self.stop_async()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),),
                                        name="crid-streaming", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    # ---- connections -----------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            await self._serve_connection(reader, writer)
        except asyncio.CancelledError:
            pass  # server stopping: the handlers below already killed/detached
        except SessionClosed as e:
            log.info("streaming client went away", peer=str(writer.get_extra_info("peername")),
                     error=str(e))
        except (StreamingError, ConnectionError, OSError, TimeoutError) as e:
            log.warning("streaming connection closed with an error",
                        peer=str(writer.get_extra_info("peername")), error=str(e))
        finally:
            self._conns.discard(task)
            writer.close()

    async def _serve_connection(self, reader: asyncio.StreamReader,
                                writer: asyncio.StreamWriter) -> None:
        _keepalive(writer)
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=16 * 1024)
        try:
            request, rest = await asyncio.wait_for(read_request(reader, conn),
                                                   self.options.handshake_seconds)
        except TimeoutError as e:
            raise ProtocolError("no complete HTTP request within the handshake timeout") from e
        except ProtocolError:
            writer.write(BAD_REQUEST)
            await writer.drain()
            raise
        try:
            kind, stored = self._route(request)
            upgrade = self._upgrade_kind(request)
            headers, subprotocol = self._negotiate(kind, upgrade, request)
        except _Reject as r:
            writer.write(error_response(conn, r.status, r.message))
            await writer.drain()
            return
        writer.write(switching_response(conn, headers))
        io = StreamTransport(reader, writer, rest)
        watchdog = asyncio.ensure_future(self._idle_watchdog(io))
        try:
            if upgrade == "websocket":
                await self._serve_websocket(kind, stored, subprotocol, WebSocket(io, client=False))
            else:
                await self._serve_spdy(kind, stored, subprotocol, io)
        finally:
            watchdog.cancel()

    def _route(self, request: HttpRequest) -> tuple[str, Any]:
        parts = request.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] not in KINDS:
            raise _Reject(404, f"no streaming endpoint at {request.path}")
        stored = self.tokens.consume(parts[0], parts[1])
        if stored is None:
            raise _Reject(404, "unknown, used or expired streaming token")
        return parts[0], stored

    @staticmethod
    def _upgrade_kind(request: HttpRequest) -> str:
        upgrades = [u.lower() for u in request.tokens("upgrade")]
        connection = [c.lower() for c in request.tokens("connection")]
        if "upgrade" not in connection:
            raise _Reject(400, "expected Connection: Upgrade")
        if request.method == "POST" and "spdy/3.1" in upgrades:
            return "spdy"
        if request.method == "GET" and "websocket" in upgrades:
            return "websocket"
        raise _Reject(400, "expected an upgrade to SPDY/3.1 (POST) or websocket (GET)")

    def _negotiate(self, kind: str, upgrade: str,
                   request: HttpRequest) -> tuple[list[tuple[str, str]], str]:
        if upgrade == "spdy":
            offered = request.tokens("x-stream-protocol-version")
            ours = ((portforward.PROTOCOL,) if kind == "portforward"
                    else remotecommand.SPDY_PROTOCOLS)
            chosen = next((p for p in offered if p in ours), None)
            if offered and chosen is None:
                raise _Reject(403, f"unable to negotiate protocol: client supports {offered}, "
                                   f"server supports {list(ours)}")
            headers = [("connection", "Upgrade"), ("upgrade", "SPDY/3.1")]
            if chosen:
                headers.append(("x-stream-protocol-version", chosen))
            return headers, chosen or ours[-1]
        key = request.get("sec-websocket-key")
        if request.get("sec-websocket-version") != "13" or not key:
            raise _Reject(400, "WebSocket upgrade needs Sec-WebSocket-Version 13 and a key")
        offered = request.tokens("sec-websocket-protocol")
        ours_ws = ((portforward.WS_TUNNEL_PROTOCOL,) if kind == "portforward"
                   else tuple(wschannels.WS_PROTOCOLS))
        chosen = next((p for p in offered if p in ours_ws), None)
        if chosen is None:
            raise _Reject(400, f"no acceptable WebSocket subprotocol in {offered}; "
                               f"server supports {list(ours_ws)}")
        return [("upgrade", "websocket"), ("connection", "Upgrade"),
                ("sec-websocket-accept", accept_key(key)),
                ("sec-websocket-protocol", chosen)], chosen

    async def _idle_watchdog(self, io: StreamTransport) -> None:
        idle = self.options.idle_seconds
        loop = asyncio.get_running_loop()
        while True:
            left = io.last_activity + idle - loop.time()
            if left <= 0:
                log.info("closing idle streaming session", idle_timeout=self.options.idle_timeout)
                io.abort()
                return
            await asyncio.sleep(min(left, 60.0) + 0.01)

    # ---- sessions --------------------------------------------------------------------------

    async def _serve_spdy(self, kind: str, stored: Any, protocol: str, io: Any) -> None:
        session = SpdySession(io, client=False)
        runner = asyncio.ensure_future(session.run())
        try:
            await self._serve_spdy_session(session, kind, stored, protocol)
            # Also after a backend failure: its status is written, and an abrupt close (RST)
            # could destroy it before the client reads it.
            await session.close_gracefully(runner)
        except ProtocolError:
            session.close(GoAwayStatus.PROTOCOL_ERROR)
            raise
        finally:
            session.close()
            await asyncio.gather(runner, return_exceptions=True)
            if runner.done() and not runner.cancelled() and runner.exception() is not None:
                raise ProtocolError(str(runner.exception())) from runner.exception()

    async def _serve_spdy_session(self, session: SpdySession, kind: str, stored: Any,
                                  protocol: str) -> None:
        try:
            if kind == "portforward":
                await portforward.serve_spdy_port_forward(
                    session, stored.pod_sandbox_id, stored.ports,
                    lambda port: self.backend.port_forward(stored.pod_sandbox_id, port),
                    self.options.stream_creation_seconds)
            else:
                await remotecommand.serve_spdy_command(
                    session, protocol, _stdio(stored), self._starter(kind, stored),
                    kind == "exec", self.options.stream_creation_seconds)
        except BackendError as e:
            log.warning("streaming backend failed", kind=kind, error=str(e))

    async def _serve_websocket(self, kind: str, stored: Any, subprotocol: str,
                               ws: WebSocket) -> None:
        try:
            if kind == "portforward":
                await self._serve_spdy(kind, stored, portforward.PROTOCOL,
                                       WebSocketTransport(ws))
            else:
                await wschannels.serve_ws_command(
                    ws, subprotocol, _stdio(stored), self._starter(kind, stored), kind == "exec")
        except BackendError as e:
            log.warning("streaming backend failed", kind=kind, error=str(e))
        except ProtocolError:
            await ws.close(1002, "protocol error")
            raise
        finally:
            with contextlib.suppress(SessionClosed):
                await ws.close()

    def _starter(self, kind: str, stored: Any) -> remotecommand.StartProcess:
        if kind == "exec":
            return lambda: self.backend.exec(stored)
        return lambda: self.backend.attach(stored)


def _keepalive(writer: asyncio.StreamWriter) -> None:
    """TCP keepalive: a peer that vanished without FIN/RST is noticed in minutes."""
    sock = writer.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 60)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 15)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 4)


def _stdio(req: ExecRequest | AttachRequest) -> remotecommand.StdioOptions:
    return remotecommand.StdioOptions(req.stdin, req.stdout, req.stderr, req.tty)
