"""Non-blocking reads and writes of process fds (pipes, pty masters, sockets) on the loop."""

from __future__ import annotations

import asyncio
import errno
import os

CHUNK = 256 * 1024


async def _ready(fd: int, write: bool) -> None:
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    add, remove = (loop.add_writer, loop.remove_writer) if write else \
        (loop.add_reader, loop.remove_reader)

    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    add(fd, wake)
    try:
        await fut
    finally:
        remove(fd)


async def read_fd(fd: int, n: int = CHUNK) -> bytes:
    """Up to n bytes; b"" at EOF (EIO from a pty master whose slave side is gone is EOF)."""
    while True:
        try:
            return os.read(fd, n)
        except BlockingIOError:
            await _ready(fd, write=False)
        except OSError as e:
            if e.errno in (errno.EIO, errno.EBADF, errno.ECONNRESET):
                return b""
            raise


async def write_fd(fd: int, data: bytes) -> bool:
    """Write all of data; False if the reader is gone (EPIPE) and nothing more can be sent."""
    view = memoryview(data)
    while len(view):
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            await _ready(fd, write=True)
        except OSError as e:
            if e.errno in (errno.EPIPE, errno.EIO, errno.EBADF, errno.ECONNRESET):
                return False
            raise
    return True


def set_nonblocking(*fds: int | None) -> None:
    for fd in fds:
        if fd is not None:
            os.set_blocking(fd, False)
