"""Exec over SPDY and WebSocket against real host processes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator

import pytest

from crid.streaming.protocol import ExecRequest, StreamingServer, TerminalSize
from crid.streaming.protocol.client import CommandIO, CommandResult, exec_spdy, exec_websocket
from tests.integration.streaming.host_backend import HostProcessBackend

TRANSPORTS = ["spdy", "websocket"]


def run(url: str, io: CommandIO, transport: str, **kw: object) -> CommandResult:
    call = exec_spdy if transport == "spdy" else exec_websocket
    return asyncio.run(asyncio.wait_for(call(url, io, **kw), 60))  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("script,code", [("exit 0", 0), ("exit 1", 1), ("kill -9 $$", 137)])
def test_exit_codes(server: StreamingServer, transport: str, script: str, code: int) -> None:
    url = server.request_exec(ExecRequest("c1", ("sh", "-c", script)))
    result = run(url, CommandIO(stdout=lambda b: None, stderr=lambda b: None), transport)
    assert result.exit_code == code
    if code:
        assert result.status is not None
        assert result.status["reason"] == "NonZeroExitCode"
        assert result.status["details"]["causes"] == [{"reason": "ExitCode",
                                                       "message": str(code)}]
    else:
        assert result.status == {"metadata": {}, "status": "Success"}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_stdout_and_stderr_are_separate(server: StreamingServer, transport: str) -> None:
    out, err = bytearray(), bytearray()
    url = server.request_exec(ExecRequest("c1", ("sh", "-c", "echo out; echo err >&2")))
    result = run(url, CommandIO(stdout=out.extend, stderr=err.extend), transport)
    assert (result.exit_code, bytes(out), bytes(err)) == (0, b"out\n", b"err\n")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_stdin_10mib_through_sha256sum(server: StreamingServer, transport: str) -> None:
    data = os.urandom(10 << 20)
    out = bytearray()
    url = server.request_exec(ExecRequest("c1", ("sha256sum",), stdin=True))
    result = run(url, CommandIO(stdin=data, stdout=out.extend, stderr=out.extend), transport)
    assert result.exit_code == 0
    assert bytes(out) == f"{hashlib.sha256(data).hexdigest()}  -\n".encode()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_binary_data_exact_both_ways(server: StreamingServer, transport: str) -> None:
    data = bytes(range(256)) * 4096 + os.urandom(3 << 20)
    out = bytearray()
    url = server.request_exec(ExecRequest("c1", ("cat",), stdin=True))
    result = run(url, CommandIO(stdin=data, stdout=out.extend, stderr=out.extend), transport)
    assert result.exit_code == 0
    assert bytes(out) == data


@pytest.mark.parametrize("protocol", ["v4.channel.k8s.io", "v4.base64.channel.k8s.io"])
def test_websocket_v4_variants(server: StreamingServer, protocol: str) -> None:
    out = bytearray()
    url = server.request_exec(ExecRequest("c1", ("sh", "-c", "printf '\\000\\377x'; exit 4")))
    result = run(url, CommandIO(stdout=out.extend), "websocket", protocol=protocol)
    assert (result.exit_code, bytes(out), result.protocol) == (4, b"\x00\xffx", protocol)


@pytest.mark.parametrize("protocols", [("v3.channel.k8s.io",), ("v2.channel.k8s.io",),
                                       ("channel.k8s.io",)])
def test_spdy_pre_v4_protocols(server: StreamingServer, protocols: tuple[str, ...]) -> None:
    out = bytearray()
    url = server.request_exec(ExecRequest("c1", ("sh", "-c", "echo hi; exit 2")))
    result = run(url, CommandIO(stdout=out.extend, stderr=out.extend), "spdy",
                 protocols=protocols)
    # Before v4 the error stream carries only a message, no exit code.
    assert (result.protocol, bytes(out), result.exit_code) == (protocols[0], b"hi\n", 1)
    assert "exit code" in result.status["message"]  # type: ignore[index]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tty_output(server: StreamingServer, transport: str) -> None:
    out = bytearray()
    url = server.request_exec(ExecRequest("c1", ("sh", "-c", "tty >/dev/null && echo TTY"),
                                          tty=True, stderr=True))
    result = run(url, CommandIO(stdout=out.extend, tty=True), transport)
    assert (result.exit_code, bytes(out)) == (0, b"TTY\r\n")


async def _resizes() -> AsyncIterator[TerminalSize]:
    yield TerminalSize(width=123, height=45)
    await asyncio.sleep(30)


async def _late_line() -> AsyncIterator[bytes]:
    await asyncio.sleep(0.3)
    yield b"go\n"
    await asyncio.sleep(30)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_resize_seen_by_stty(server: StreamingServer, transport: str) -> None:
    out = bytearray()
    url = server.request_exec(ExecRequest("c1", ("sh", "-c", "read x; stty size"), tty=True,
                                          stdin=True))
    io = CommandIO(stdin=_late_line(), stdout=out.extend, tty=True, resizes=_resizes())
    result = run(url, io, transport)
    assert result.exit_code == 0
    assert out.endswith(b"45 123\r\n"), bytes(out)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_process_killed_when_client_goes_away(server: StreamingServer,
                                              backend: HostProcessBackend, transport: str) -> None:
    url = server.request_exec(ExecRequest("c1", ("sleep", "1000")))

    async def leave_early() -> None:
        io = CommandIO(stdout=lambda b: None, stderr=lambda b: None)
        call = exec_spdy if transport == "spdy" else exec_websocket
        task = asyncio.ensure_future(call(url, io))
        await asyncio.sleep(0.5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(leave_early())
    deadline = time.monotonic() + 10
    while backend.execs[0].proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backend.execs[0].proc.returncode == -9


def test_hundreds_of_concurrent_sessions(server: StreamingServer) -> None:
    async def one(i: int, transport: str) -> bytes:
        out = bytearray()
        url = server.request_exec(ExecRequest("c1", ("sh", "-c", f"sleep 0.5; echo {i}")))
        call = exec_spdy if transport == "spdy" else exec_websocket
        result = await call(url, CommandIO(stdout=out.extend, stderr=out.extend))
        assert result.exit_code == 0
        return bytes(out)

    async def many() -> list[bytes]:
        return await asyncio.gather(*(one(i, TRANSPORTS[i % 2]) for i in range(200)))

    assert asyncio.run(asyncio.wait_for(many(), 120)) == [f"{i}\n".encode() for i in range(200)]


def test_slow_client_slows_only_itself(server: StreamingServer) -> None:
    import threading

    stalled = threading.Event()
    slow_out = [0]

    def slow_sink(chunk: bytes) -> None:
        slow_out[0] += len(chunk)
        if not stalled.is_set():
            stalled.set()
            time.sleep(3)  # blocks this client's loop: it stops reading its socket

    slow_url = server.request_exec(ExecRequest("c1", ("head", "-c", str(64 << 20), "/dev/zero"),
                                               stderr=False))
    slow = threading.Thread(target=lambda: asyncio.run(exec_spdy(slow_url,
                                                                 CommandIO(stdout=slow_sink))))
    slow.start()
    assert stalled.wait(10)
    out = bytearray()
    start = time.monotonic()
    url = server.request_exec(ExecRequest("c1", ("head", "-c", str(8 << 20), "/dev/urandom")))
    result = run(url, CommandIO(stdout=out.extend, stderr=out.extend), "spdy")
    assert (result.exit_code, len(out)) == (0, 8 << 20)
    assert time.monotonic() - start < 2.5  # done while the slow client is still stalled
    slow.join(30)
    assert slow_out[0] == 64 << 20


def test_tls(make_server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = make_server(tls_cert=str(cert), tls_key=str(key))
    ctx = ssl.create_default_context(cafile=str(cert))
    for transport in TRANSPORTS:
        url = server.request_exec(ExecRequest("c1", ("echo", "secure")))
        assert url.startswith("https://127.0.0.1:")
        out = bytearray()
        result = run(url, CommandIO(stdout=out.extend, stderr=out.extend), transport, ssl=ctx)
        assert (result.exit_code, bytes(out)) == (0, b"secure\n")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_backend_failure_is_reported_in_the_status(server: StreamingServer,
                                                   transport: str) -> None:
    url = server.request_exec(ExecRequest("c1", ("/nonexistent/binary",)))
    result = run(url, CommandIO(stdout=lambda b: None, stderr=lambda b: None), transport)
    assert result.exit_code == 1
    assert result.status is not None
    assert result.status["reason"] == "InternalError"
    assert "/nonexistent/binary" in result.status["message"]
