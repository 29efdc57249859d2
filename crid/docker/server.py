"""The Docker Engine API server: a unix socket, one thread per client connection.

Each request is parsed (h11), stripped of its /v1.NN prefix, routed, and handled; any
exception becomes Docker's status code and `{"message": ...}` body here and nowhere else.
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from crid import logs
from crid.docker.errors import BadRequest, NotModified, message_body, status_for
from crid.docker.http import (
    Hijack,
    HttpConnection,
    Request,
    Response,
    split_target,
)
from crid.docker.router import Router
from crid.docker.tls import TcpOptions, handshake, listen_tcp, plain_end
from crid.docker.versions import split_version
from crid.errors import CridError
from imagestore import ImageStoreError

log = logs.get("crid.docker")


@dataclass(frozen=True)
class DockerServerOptions:
    socket_path: Path
    group: str = ""  # the socket's group ("" = root's); mode 0660 either way
    upload_limit: int = 16 << 30  # bytes of one streamed body (build context, image archive)
    spool_dir: Path = Path("/var/lib/crid/docker/uploads")  # where spooled bodies live
    tcp: TcpOptions | None = None  # a TCP listener too, TLS with client certificates only


class DockerServer:
    """Serves `router` on a unix socket until `stop()`."""

    def __init__(self, opts: DockerServerOptions, router: Router) -> None:
        self._opts, self._router = opts, router
        self._listeners: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self) -> None:
        """Binds the socket (mode 0660, the configured group) and serves in the background.

        Raises:
            OSError: the socket cannot be made; KeyError: the group does not exist;
            TlsConfigError, ssl.SSLError: a TCP listener without usable TLS files.
        """
        tcp: tuple[socket.socket, ssl.SSLContext] | None = None
        if self._opts.tcp is not None:
            tcp = listen_tcp(self._opts.tcp)
        path = self._opts.socket_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        # Bound under a umask that leaves nobody else a window on the root-equivalent socket.
        old = os.umask(0o177)
        try:
            listener.bind(str(path))
        finally:
            os.umask(old)
        gid = grp.getgrnam(self._opts.group).gr_gid if self._opts.group else -1
        os.chown(path, -1, gid)
        os.chmod(path, 0o660)
        listener.listen(256)
        self._serve_on(listener, None)
        if tcp is not None:
            self._serve_on(*tcp)

    def _serve_on(self, listener: socket.socket, ctx: ssl.SSLContext | None) -> None:
        self._listeners.append(listener)
        thread = threading.Thread(target=self._accept_loop, args=(listener, ctx),
                                  name="docker-api", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stops accepting and closes every connection (hijacked sessions end)."""
        self._stopping.set()
        for listener in self._listeners:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5)
        self._opts.socket_path.unlink(missing_ok=True)

    def _accept_loop(self, listener: socket.socket, ctx: ssl.SSLContext | None) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(sock)
            threading.Thread(target=self._serve, args=(sock, ctx), name="docker-conn",
                             daemon=True).start()

    def _serve(self, sock: socket.socket, ctx: ssl.SSLContext | None) -> None:
        try:
            conn = HttpConnection(handshake(ctx, sock) if ctx is not None else sock)
            while self._one_request(conn):
                pass
            conn.linger()
        except (OSError, BadRequest) as e:  # ssl.SSLError too: a client without a certificate
            log.debug("docker API connection ended", error=str(e))
        finally:
            with self._lock:
                self._conns.discard(sock)
            sock.close()

    def _one_request(self, conn: HttpConnection) -> bool:
        """Serves one request; False when the connection is done."""
        try:
            head = conn.next_head()
        except BadRequest as e:
            with contextlib.suppress(Exception):
                conn.send(_error(e))
            return False
        if head is None:
            return False
        started = time.monotonic()
        path, query = split_target(head.target.decode("latin-1"))
        req = Request(head.method.decode("latin-1"), path, query,
                      [(n.decode("latin-1").lower(), v.decode("latin-1"))
                       for n, v in head.headers], b"", "", peer_gone=conn.peer_gone)
        result = self._dispatch(conn, req)
        if isinstance(result, Hijack):
            conn.send_hijack_head(req.wants_upgrade, result.content_type)
            _hijacked(conn.sock, result, conn.leftover)
            return False
        if req.stream is not None and not req.stream.done and result.status < 400:
            # A handler that succeeded without reading all of its upload: the client is owed
            # a reply, not a reset; the rest is read so the connection stays usable.
            with contextlib.suppress(BadRequest):
                req.stream.drain()
        conn.send(result, head_only=req.method == "HEAD")
        log.debug("docker API request", method=req.method, path=head.target.decode("latin-1"),
                  status=result.status, ms=round((time.monotonic() - started) * 1000, 1))
        return conn.reusable()

    def _dispatch(self, conn: HttpConnection, req: Request) -> Response | Hijack:
        try:
            req.version, req.path = split_version(req.path)
            route, req.params = self._router.route(req.method, req.path)
            if route.streams_body:
                req.stream = conn.body_stream(self._opts.upload_limit, self._opts.spool_dir)
            else:
                req.body = conn.read_body()
            return route.handler(req)
        except (CridError, ImageStoreError, OSError, ValueError, KeyError, TypeError) as e:
            if status_for(e) >= 500:
                log.warning("docker API request failed", method=req.method, path=req.path,
                            error=str(e), type=type(e).__name__)
            return _error(e)


def _hijacked(sock: socket.socket, hijack: Hijack, leftover: bytes) -> None:
    """Runs the session on the connection; over TLS through a relayed plain socket."""
    if not isinstance(sock, ssl.SSLSocket):
        hijack.serve(sock, leftover)
        return
    plain, relay = plain_end(sock)
    try:
        hijack.serve(plain, leftover)
    finally:
        plain.close()
        relay.join()


def _error(exc: BaseException) -> Response:
    status = status_for(exc)
    if isinstance(exc, NotModified):
        return Response(304, b"", content_type="")
    return Response(status, json.dumps(message_body(exc)).encode() + b"\n")
