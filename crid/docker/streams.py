"""Hijacked attach and exec sessions: a process handle's fds <-> the client's socket.

Without a tty, output leaves as Docker's 8-byte-header frames (stdout 1, stderr 2); with a
tty, raw. The client's bytes go to stdin; its half-close (CloseWrite) closes stdin. The
session ends when the output ends and the process has exited; `on_exit` learns the code
before the socket closes (the CLI inspects an exec's exit code right after its stream ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable

from crid.docker.logs import STDERR, STDOUT, frame
from crid.streaming.protocol.backend import ProcessHandle
from crid.streaming.protocol.fdio import read_fd, set_nonblocking, write_fd

Opener = Callable[[], Awaitable[ProcessHandle]]


def run_session(sock: socket.socket, leftover: bytes, open_handle: Opener, tty: bool,
                on_start: Callable[[ProcessHandle], None] = lambda h: None,
                on_exit: Callable[[int], None] = lambda code: None,
                close_stdin: bool = True) -> None:
    """Serves one hijacked session in the calling thread (its own event loop).
    `close_stdin`: the client's EOF closes the process's stdin (Docker keeps a tty
    container's stdin open when an attached client leaves: detaching must not end it)."""
    asyncio.run(_session(sock, leftover, open_handle, tty, on_start, on_exit, close_stdin))


async def _session(sock: socket.socket, leftover: bytes, open_handle: Opener, tty: bool,
                   on_start: Callable[[ProcessHandle], None],
                   on_exit: Callable[[int], None], close_stdin: bool) -> None:
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    handle = await open_handle()
    try:
        on_start(handle)
        set_nonblocking(handle.stdin, handle.stdout, handle.stderr)
        inbound = asyncio.ensure_future(_pump_in(loop, sock, leftover, handle, close_stdin))
        outs = [(fd, kind) for fd, kind in ((handle.stdout, STDOUT), (handle.stderr, STDERR))
                if fd is not None]
        try:
            await asyncio.gather(*(_pump_out(loop, sock, fd, kind, tty) for fd, kind in outs))
            code = await handle.wait()
        except (ConnectionError, OSError):
            handle.kill()  # the client is gone: an exec does not outlive its session
            raise
        finally:
            inbound.cancel()
            with contextlib.suppress(BaseException):
                await inbound
        on_exit(code)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
    finally:
        handle.close()


async def _pump_out(loop: asyncio.AbstractEventLoop, sock: socket.socket, fd: int, kind: int,
                    tty: bool) -> None:
    while data := await read_fd(fd):
        await loop.sock_sendall(sock, data if tty else frame(kind, data))


async def _pump_in(loop: asyncio.AbstractEventLoop, sock: socket.socket, leftover: bytes,
                   handle: ProcessHandle, close_stdin: bool) -> None:
    data = leftover
    with contextlib.suppress(OSError):
        while True:
            if data and handle.stdin is not None and not await write_fd(handle.stdin, data):
                break
            data = await loop.sock_recv(sock, 65536)
            if not data:
                break
    if handle.stdin is not None and close_stdin:
        handle.close_stdin()
