"""TCP connections to localhost:port inside a pod's network namespace.

setns(CLONE_NEWNET) moves only the calling thread, and a socket belongs to the namespace it
was created in for its whole life. So a fresh short-lived thread enters the pod's namespace,
creates the sockets and returns to the host namespace before it ends; the connect then runs on
the event loop like any other. No gRPC or loop thread ever changes namespace, and a thread
whose way back failed ends anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading

from crid.streaming.protocol import BackendError
from runtime.linux.netns import netns_entered

FAMILIES = ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"))


def sockets_in(netns_path: str) -> list[socket.socket]:
    """One unconnected non-blocking TCP socket per family, created inside netns_path.

    Raises:
        OSError: the namespace cannot be opened or entered.
    """
    with netns_entered(netns_path):
        return [_socket(family) for family, _ in FAMILIES]


def _socket(family: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.setblocking(False)
    return sock


async def _in_thread(netns_path: str) -> list[socket.socket]:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[list[socket.socket]] = loop.create_future()

    def settle(result: list[socket.socket] | None, error: BaseException | None) -> None:
        if fut.cancelled():
            for s in result or ():
                s.close()
        elif error is not None:
            fut.set_exception(error)
        else:
            fut.set_result(result or [])

    def work() -> None:
        try:
            result, error = sockets_in(netns_path), None
        except BaseException as e:  # reported to the awaiting coroutine
            result, error = None, e
        loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="netns-dial", daemon=True).start()
    return await fut


async def connect_local(netns_path: str | None, port: int, what: str) -> socket.socket:
    """A socket connected to localhost:port in netns_path (None: the host's namespace);
    IPv4 first, then IPv6, as a client resolving "localhost" would.

    Raises:
        BackendError: the namespace cannot be entered or nothing accepts on the port.
    """
    loop = asyncio.get_running_loop()
    try:
        socks = await _in_thread(netns_path) if netns_path else \
            [_socket(family) for family, _ in FAMILIES]
    except OSError as e:
        raise BackendError(f"port forward to {what}: entering {netns_path}: {e}") from e
    errors: list[str] = []
    for sock, (_, host) in zip(socks, FAMILIES, strict=True):
        try:
            await loop.sock_connect(sock, (host, port))
        except OSError as e:
            # asyncio's message drops the reason: name it from errno ("Connection refused").
            errors.append(f"{host}: {os.strerror(e.errno) if e.errno else e}")
            sock.close()
            continue
        for other in socks:
            if other is not sock:
                other.close()
        return sock
    with contextlib.suppress(Exception):
        for sock in socks:
            sock.close()
    raise BackendError(f"port forward to {what} port {port}: {'; '.join(errors)}")
