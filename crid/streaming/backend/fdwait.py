"""Awaiting an fd on the running asyncio loop (a wait pipe's EOF, a pidfd)."""

from __future__ import annotations

import asyncio
import os


async def readable(fd: int) -> None:
    """Returns once fd is readable (data, EOF or a pidfd whose process exited)."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, wake)
    try:
        await fut
    finally:
        loop.remove_reader(fd)


async def read_to_eof(fd: int, limit: int = 1 << 16) -> bytes:
    """Everything fd yields until EOF (at most limit bytes are kept); fd must be non-blocking."""
    data = bytearray()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            await readable(fd)
            continue
        if not chunk:
            return bytes(data[:limit])
        data += chunk


def close_quietly(*fds: int | None) -> None:
    for fd in fds:
        if fd is not None and fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass
