"""Attach: the container's main process through its monitor's attach socket.

The monitor speaks frames (runtime.monitor.framing) to any number of clients: every client
gets every output frame, any may write stdin, CLOSE_STDIN is honoured for stdin_once
containers, an EXIT frame carries the exit record. The streaming server wants fds, so one
task per attachment moves frames to and from pipes. Detaching closes only our connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import Callable

from crid.streaming.backend.fdwait import close_quietly
from crid.streaming.protocol import AttachRequest, BackendError, TerminalSize
from crid.streaming.protocol.fdio import read_fd, write_fd
from runtime.api import connect_unix, framing

CONNECT_TIMEOUT = 5.0


class AttachProcess:
    """ProcessHandle of one attachment; `wait()` resolves when the container exits."""

    def __init__(self, sock: socket.socket, req: AttachRequest,
                 exit_code: Callable[[], int | None]) -> None:
        self._sock, self._tty = sock, req.tty
        self._out: dict[int, int] = {}
        self.stdout = self.stderr = self.stdin = None
        self._in_r: int | None = None
        if req.stdout:
            self.stdout, self._out[framing.STDOUT] = os.pipe2(os.O_CLOEXEC)
        if req.stderr:
            self.stderr, self._out[framing.STDERR] = os.pipe2(os.O_CLOEXEC)
        if req.stdin:
            self._in_r, self.stdin = os.pipe2(os.O_CLOEXEC)
        for fd in (*self._out.values(), self._in_r):
            if fd is not None:
                os.set_blocking(fd, False)
        self._exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._send_lock = asyncio.Lock()  # frames from stdin and resizes must not interleave
        self._tasks = [asyncio.ensure_future(self._pump_out(exit_code))]
        if self._in_r is not None:
            self._tasks.append(asyncio.ensure_future(self._pump_in()))

    async def _pump_out(self, fallback: Callable[[], int | None]) -> None:
        loop, reader = asyncio.get_running_loop(), framing.FrameReader()
        try:
            while not self._exit.done():
                data = await loop.sock_recv(self._sock, 1 << 18)
                if not data:
                    break
                for kind, payload in reader.feed(data):
                    await self._deliver(kind, payload)
        except (OSError, framing.FrameError):
            pass
        finally:
            # The monitor closes after EXIT; without one, the container's end is unknown here.
            if not self._exit.done():
                code = fallback()
                self._exit.set_result(code if code is not None else 255)
            close_quietly(*self._out.values())
            self._out.clear()

    async def _deliver(self, kind: int, payload: bytes) -> None:
        if kind == framing.EXIT:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                self._exit.set_result(int(json.loads(payload)["exit_code"]))
            if not self._exit.done():
                self._exit.set_result(255)
            return
        fd = self._out.get(kind)
        if fd is not None and not await write_fd(fd, payload):
            close_quietly(self._out.pop(kind))  # that reader is gone; keep serving the other

    async def _send(self, frame: bytes) -> None:
        async with self._send_lock:
            await asyncio.get_running_loop().sock_sendall(self._sock, frame)

    async def _pump_in(self) -> None:
        assert self._in_r is not None
        with contextlib.suppress(OSError):
            while data := await read_fd(self._in_r, framing.MAX_PAYLOAD):
                await self._send(framing.encode(framing.STDIN, data))
            await self._send(framing.encode(framing.CLOSE_STDIN))

    def close_stdin(self) -> None:
        # EOF travels behind the data still in the pipe: _pump_in sends CLOSE_STDIN after it.
        close_quietly(self.stdin)
        self.stdin = None

    def resize(self, size: TerminalSize) -> None:
        if self._tty:
            task = asyncio.ensure_future(self._send(framing.encode_resize(size.height,
                                                                          size.width)))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._tasks.append(task)

    async def wait(self) -> int:
        return await asyncio.shield(self._exit)

    def kill(self) -> None:
        """Detaching never stops the container."""

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        close_quietly(self.stdin, self.stdout, self.stderr, self._in_r, *self._out.values())
        self.stdin = self.stdout = self.stderr = self._in_r = None
        self._out.clear()
        self._sock.close()


def connect_attach(path: str, container_id: str) -> socket.socket:
    """A non-blocking connection to the monitor's attach socket. Blocking: run in a thread.

    Raises:
        BackendError: the monitor cannot be reached (the container has exited).
    """
    try:
        sock = connect_unix(path, CONNECT_TIMEOUT)
    except OSError as e:
        raise BackendError(f"attach to container {container_id}: its monitor at {path}: {e}") \
            from e
    sock.setblocking(False)
    return sock
