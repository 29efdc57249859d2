"""AttachProcess against a fake monitor on a socketpair: frames become fds and back."""

from __future__ import annotations

import asyncio
import json
import os
import socket

from crid.streaming.backend.attach_process import AttachProcess
from crid.streaming.protocol import AttachRequest, TerminalSize
from crid.streaming.protocol.fdio import read_fd, write_fd
from runtime.monitor import framing


async def _read_all(fd: int) -> bytes:
    os.set_blocking(fd, False)
    out = bytearray()
    while chunk := await read_fd(fd):
        out += chunk
    return bytes(out)


def _frames(sock: socket.socket) -> list[tuple[int, bytes]]:
    sock.setblocking(True)
    reader, frames = framing.FrameReader(), []
    while data := sock.recv(65536):
        frames += reader.feed(data)
    return frames


def test_output_stdin_resize_and_exit() -> None:
    ours, monitor = socket.socketpair()
    received: list[tuple[int, bytes]] = []

    async def run() -> tuple[int, bytes, bytes]:
        ours.setblocking(False)
        handle = AttachProcess(ours, AttachRequest("c", tty=True, stdin=True, stdout=True,
                                                   stderr=False), exit_code=lambda: None)
        assert handle.stdin is not None and handle.stdout is not None
        assert handle.stderr is None
        os.set_blocking(handle.stdin, False)
        assert await write_fd(handle.stdin, b"typed")
        handle.close_stdin()
        handle.resize(TerminalSize(width=100, height=30))
        await asyncio.sleep(0.1)
        monitor.sendall(framing.encode(framing.STDOUT, b"hello ") +
                        framing.encode(framing.STDOUT, b"world") +
                        framing.encode(framing.EXIT, json.dumps({"exit_code": 7}).encode()))
        out = await _read_all(handle.stdout)
        code = await asyncio.wait_for(handle.wait(), 5)
        handle.close()
        received.extend(_frames(monitor))
        return code, out, b""
    code, out, _ = asyncio.run(run())
    assert (code, out) == (7, b"hello world")
    assert (framing.STDIN, b"typed") in received
    assert (framing.CLOSE_STDIN, b"") in received
    assert (framing.RESIZE, framing.RESIZE_PAYLOAD.pack(30, 100)) in received
    assert received.index((framing.STDIN, b"typed")) < received.index((framing.CLOSE_STDIN, b""))


def test_monitor_gone_without_exit_frame_uses_the_recorded_exit() -> None:
    ours, monitor = socket.socketpair()

    async def run() -> int:
        ours.setblocking(False)
        handle = AttachProcess(ours, AttachRequest("c", stdout=True, stderr=True),
                               exit_code=lambda: 137)
        monitor.sendall(framing.encode(framing.STDERR, b"e"))
        monitor.close()
        assert handle.stderr is not None
        assert await _read_all(handle.stderr) == b"e"
        code = await asyncio.wait_for(handle.wait(), 5)
        handle.close()
        return code
    assert asyncio.run(run()) == 137


def test_detach_leaves_the_monitor_connection_closed_only() -> None:
    ours, monitor = socket.socketpair()

    async def run() -> None:
        ours.setblocking(False)
        handle = AttachProcess(ours, AttachRequest("c", stdout=True), exit_code=lambda: None)
        handle.kill()  # a no-op for attach
        handle.close()
    asyncio.run(run())
    assert _frames(monitor) == []  # nothing sent: no CLOSE_STDIN, no signal
