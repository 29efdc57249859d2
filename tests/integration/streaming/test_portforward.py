"""Port forwarding over SPDY and SPDY-in-WebSocket to loopback servers started by the tests."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from crid.streaming.protocol import PortForwardRequest, StreamingServer
from crid.streaming.protocol.client import PortForwarder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def http_server(tmp_path) -> Iterator[int]:  # type: ignore[no-untyped-def]
    (tmp_path / "hello.txt").write_bytes(b"hello from the pod\n")
    (tmp_path / "big.bin").write_bytes(os.urandom(4 << 20))
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "-b", "127.0.0.1", str(port)],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def echo_server() -> Iterator[int]:
    """A TCP echo server on loopback in its own thread-run loop."""
    import threading
    ready, port_box = threading.Event(), []
    loop = asyncio.new_event_loop()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        writer.close()

    stop: list[asyncio.Event] = []

    async def main() -> None:
        stop.append(asyncio.Event())
        srv = await asyncio.start_server(echo, "127.0.0.1", 0)
        port_box.append(srv.sockets[0].getsockname()[1])
        ready.set()
        await stop[0].wait()
        srv.close()
        await srv.wait_closed()
        # Let echo handlers of connections still closing finish, so none is left pending.
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        await asyncio.wait(others, timeout=5) if others else None

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    task = asyncio.run_coroutine_threadsafe(main(), loop)
    ready.wait()
    yield port_box[0]
    loop.call_soon_threadsafe(stop[0].set)
    task.result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


async def _http_get(conn, path: str) -> bytes:  # type: ignore[no-untyped-def]
    await conn.write(f"GET {path} HTTP/1.0\r\nHost: pod\r\n\r\n".encode())
    await conn.close_write()
    body = bytearray()
    while chunk := await conn.read():
        body += chunk
    return bytes(body)


@pytest.mark.parametrize("websocket", [False, True])
def test_forward_web_server(server: StreamingServer, http_server: int, tmp_path,  # type: ignore
                            websocket: bool) -> None:
    url = server.request_port_forward(PortForwardRequest("pod1", (http_server,)))

    async def go() -> tuple[bytes, bytes, str]:
        pf = await PortForwarder.connect(url, websocket=websocket)
        try:
            small = await _http_get(await pf.open(http_server), "/hello.txt")
            conn = await pf.open(http_server)
            big = await _http_get(conn, "/big.bin")
            return small, big, await conn.error()
        finally:
            await pf.close()

    small, big, error = asyncio.run(asyncio.wait_for(go(), 30))
    assert small.startswith(b"HTTP/1.0 200") and small.endswith(b"\r\n\r\nhello from the pod\n")
    assert big.endswith((tmp_path / "big.bin").read_bytes())
    assert error == ""


@pytest.mark.parametrize("websocket", [False, True])
def test_forward_echo_50_parallel(server: StreamingServer, echo_server: int,
                                  websocket: bool) -> None:
    url = server.request_port_forward(PortForwardRequest("pod1", ()))
    payloads = [os.urandom(64 * 1024 + i) for i in range(50)]

    async def one(pf: PortForwarder, payload: bytes) -> bytes:
        conn = await pf.open(echo_server)
        sender = asyncio.ensure_future(conn.write(payload))
        got = bytearray()
        while len(got) < len(payload) and (chunk := await conn.read()):
            got += chunk
        await sender
        await conn.close_write()
        assert await conn.read() == b""
        return bytes(got)

    async def go() -> list[bytes]:
        pf = await PortForwarder.connect(url, websocket=websocket)
        try:
            return await asyncio.gather(*(one(pf, p) for p in payloads))
        finally:
            await pf.close()

    assert asyncio.run(asyncio.wait_for(go(), 60)) == payloads


def test_forward_local_listener(server: StreamingServer, echo_server: int) -> None:
    url = server.request_port_forward(PortForwardRequest("pod1", (echo_server,)))

    async def go() -> bytes:
        pf = await PortForwarder.connect(url)
        listener = await pf.serve_local(echo_server)
        port = listener.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"ping")
            writer.write_eof()
            data = await reader.read()
            writer.close()
            return data
        finally:
            listener.close()
            await pf.close()

    assert asyncio.run(asyncio.wait_for(go(), 20)) == b"ping"


def test_refused_port_reports_error(server: StreamingServer) -> None:
    dead = _free_port()
    url = server.request_port_forward(PortForwardRequest("pod1", ()))

    async def go() -> tuple[str, bytes]:
        pf = await PortForwarder.connect(url)
        try:
            conn = await pf.open(dead)
            return await conn.error(), await conn.read()
        finally:
            await pf.close()

    error, data = asyncio.run(asyncio.wait_for(go(), 20))
    assert error.startswith(f"error forwarding port {dead} to pod pod1:")
    assert data == b""


def test_port_not_in_request_is_refused(server: StreamingServer, echo_server: int) -> None:
    url = server.request_port_forward(PortForwardRequest("pod1", (1,)))

    async def go() -> str:
        pf = await PortForwarder.connect(url)
        try:
            return await (await pf.open(echo_server)).error()
        finally:
            await pf.close()

    assert "was not requested" in asyncio.run(asyncio.wait_for(go(), 20))
