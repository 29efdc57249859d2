"""The Docker API over TCP, only with TLS and client certificates (dockerd's --tlsverify).

The socket is root-equivalent, so a TCP listener is refused unless a server certificate, its
key and a CA are configured; a client that presents no certificate signed by that CA fails
the handshake. Requests are served by the same code as the unix socket. A hijacked session
(attach, exec) runs its asyncio pumps on a plain socket, which an SSL socket is not: a
socketpair stands between them and two threads relay bytes (and the client's close).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from dataclasses import dataclass

HANDSHAKE_TIMEOUT = 10.0
RELAY_SIZE = 65536


class TlsConfigError(ValueError):
    """A TCP listener without everything --tlsverify needs."""


@dataclass(frozen=True)
class TcpOptions:
    address: str  # "host:port"
    cert: str
    key: str
    ca: str

    def check(self) -> None:
        if not (self.cert and self.key and self.ca):
            raise TlsConfigError("[docker] tcp needs tls_cert, tls_key and tls_ca: the API is "
                                 "root-equivalent, so it is served over TCP only to clients "
                                 "with a certificate the CA signed (dockerd's --tlsverify)")
        host, sep, port = self.address.rpartition(":")
        if not sep or not port.isdigit():
            raise TlsConfigError(f"[docker] tcp {self.address!r}: want host:port")


def listen_tcp(opts: TcpOptions) -> tuple[socket.socket, ssl.SSLContext]:
    """The bound TCP listener and the server context that requires client certificates.

    Raises:
        TlsConfigError: incomplete options; OSError / ssl.SSLError: unreadable PEM files,
        an address in use.
    """
    opts.check()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(opts.cert, opts.key)
    ctx.load_verify_locations(opts.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    host, _, port = opts.address.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, int(port)))
    listener.listen(256)
    return listener, ctx


def handshake(ctx: ssl.SSLContext, sock: socket.socket) -> ssl.SSLSocket:
    """The TLS side of an accepted connection (the handshake bounded in time).

    Raises:
        ssl.SSLError, OSError: no valid client certificate, or the peer went away.
    """
    sock.settimeout(HANDSHAKE_TIMEOUT)
    tls = ctx.wrap_socket(sock, server_side=True)
    tls.settimeout(None)
    return tls


def plain_end(tls: ssl.SSLSocket) -> tuple[socket.socket, threading.Thread]:
    """A plain socket whose bytes are the TLS connection's (for a hijacked session); the
    relay thread ends when both directions have."""
    mine, theirs = socket.socketpair()

    def inbound() -> None:  # client -> session, then the client's close as a half-close
        with contextlib.suppress(OSError, ssl.SSLError):
            while data := tls.recv(RELAY_SIZE):
                theirs.sendall(data)
        with contextlib.suppress(OSError):
            theirs.shutdown(socket.SHUT_WR)

    def outbound() -> None:  # session -> client, until the session closes its side
        with contextlib.suppress(OSError, ssl.SSLError):
            while data := theirs.recv(RELAY_SIZE):
                tls.sendall(data)

    def relay() -> None:
        reader = threading.Thread(target=inbound, name="docker-tls-in", daemon=True)
        reader.start()
        outbound()
        with contextlib.suppress(OSError):
            tls.shutdown(socket.SHUT_RDWR)  # ends inbound's recv
        reader.join()
        theirs.close()

    thread = threading.Thread(target=relay, name="docker-tls-relay", daemon=True)
    thread.start()
    return mine, thread
