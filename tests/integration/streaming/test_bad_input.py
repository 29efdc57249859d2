"""Hostile and broken clients: each loses its own connection, nothing else is touched."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable

import pytest

from crid.streaming.protocol import ExecRequest, StreamingServer
from crid.streaming.protocol.client import CommandIO, UpgradeRefused, exec_spdy, exec_websocket
from crid.streaming.protocol.spdy import frames as F
from crid.streaming.protocol.spdy.dictionary import DICTIONARY
from crid.streaming.protocol.spdy.headers import HeaderCompressor, encode_block
from tests.integration.streaming.host_backend import HostProcessBackend

GOAWAY_HEAD = bytes.fromhex("8003000700000008")


def _ends_with_goaway_protocol_error(reply: bytes) -> bool:
    """The last frame is GOAWAY (any last-good id) with status 1 (PROTOCOL_ERROR)."""
    return reply[-16:-8] == GOAWAY_HEAD and reply[-4:] == b"\x00\x00\x00\x01"


def _bad_execs(backend: HostProcessBackend) -> list[object]:
    """Execs started for the bad sessions (they all run `true`; the bystander runs sh)."""
    return [e for e in backend.execs if e.proc.args == ("true",)]


def _spdy_request(path: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
            "X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n").encode()


def _connect(server: StreamingServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), 5)
    sock.settimeout(10)
    return sock


def _read_to_eof(sock: socket.socket) -> bytes:
    data = bytearray()
    while chunk := sock.recv(65536):
        data += chunk
    return bytes(data)


def _exec_url_path(server: StreamingServer, cmd: tuple[str, ...] = ("true",)) -> str:
    url = server.request_exec(ExecRequest("c1", cmd))
    return url.split(str(server.port), 1)[1]


def _upgraded(server: StreamingServer, after: bytes = b"") -> tuple[socket.socket, bytes]:
    sock = _connect(server)
    sock.sendall(_spdy_request(_exec_url_path(server)) + after)
    return sock, b""


class _Bystander:
    """A healthy session running across a bad-input test: it must finish untouched."""

    def __init__(self, server: StreamingServer) -> None:
        self.url = server.request_exec(ExecRequest("c1", ("sh", "-c", "sleep 1; echo alive")))
        self.out = bytearray()
        self.result: object = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        io = CommandIO(stdout=self.out.extend, stderr=self.out.extend)
        self.result = asyncio.run(exec_spdy(self.url, io))

    def check(self) -> None:
        self.thread.join(20)
        assert getattr(self.result, "exit_code", None) == 0
        assert bytes(self.out) == b"alive\n"


@pytest.fixture
def bystander(server: StreamingServer) -> _Bystander:
    return _Bystander(server)


def _status_line(response: bytes) -> bytes:
    return response.split(b"\r\n", 1)[0]


def test_unknown_token_is_404(server: StreamingServer) -> None:
    sock = _connect(server)
    sock.sendall(_spdy_request("/exec/not-a-token"))
    assert _status_line(_read_to_eof(sock)) == b"HTTP/1.1 404 Not Found"


def test_token_is_single_use(server: StreamingServer) -> None:
    url = server.request_exec(ExecRequest("c1", ("true",)))
    io = CommandIO(stdout=lambda b: None, stderr=lambda b: None)
    assert asyncio.run(exec_spdy(url, io)).exit_code == 0
    with pytest.raises(UpgradeRefused) as info:
        asyncio.run(exec_spdy(url, io))
    assert info.value.status == 404


def test_token_of_another_kind_is_404(server: StreamingServer) -> None:
    url = server.request_exec(ExecRequest("c1", ("true",)))
    with pytest.raises(UpgradeRefused) as info:
        asyncio.run(exec_spdy(url.replace("/exec/", "/attach/"), CommandIO(stdout=print)))
    assert info.value.status == 404


def test_expired_token_is_404(make_server: Callable[..., StreamingServer]) -> None:
    server = make_server(token_ttl="200ms")
    url = server.request_exec(ExecRequest("c1", ("true",)))
    time.sleep(0.4)
    with pytest.raises(UpgradeRefused) as info:
        asyncio.run(exec_spdy(url, CommandIO(stdout=print, stderr=print)))
    assert info.value.status == 404


def test_no_common_spdy_protocol_is_403(server: StreamingServer) -> None:
    url = server.request_exec(ExecRequest("c1", ("true",)))
    with pytest.raises(UpgradeRefused) as info:
        asyncio.run(exec_spdy(url, CommandIO(stdout=print), protocols=("v9.channel.k8s.io",)))
    assert info.value.status == 403


def test_plain_get_is_400(server: StreamingServer) -> None:
    sock = _connect(server)
    sock.sendall(f"GET {_exec_url_path(server)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert _status_line(_read_to_eof(sock)) == b"HTTP/1.1 400 Bad Request"


@pytest.mark.parametrize("protocols", ["", "chat, superchat"])
def test_websocket_without_right_subprotocol_is_refused(server: StreamingServer,
                                                        protocols: str) -> None:
    sock = _connect(server)
    header = f"Sec-WebSocket-Protocol: {protocols}\r\n" if protocols else ""
    sock.sendall((f"GET {_exec_url_path(server)} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  f"Sec-WebSocket-Version: 13\r\n{header}\r\n").encode())
    response = _read_to_eof(sock)
    assert _status_line(response) == b"HTTP/1.1 400 Bad Request"
    assert b"no acceptable WebSocket subprotocol" in response


def test_websocket_client_offering_only_v5_is_accepted(server: StreamingServer) -> None:
    url = server.request_exec(ExecRequest("c1", ("true",)))
    result = asyncio.run(exec_websocket(url, CommandIO(stdout=print, stderr=print)))
    assert (result.protocol, result.exit_code) == ("v5.channel.k8s.io", 0)


def test_garbage_after_upgrade(server: StreamingServer, backend: HostProcessBackend,
                               bystander: _Bystander) -> None:
    sock = _connect(server)
    sock.sendall(_spdy_request(_exec_url_path(server)) + b"\xff" * 64 + b"GARBAGE" * 100)
    reply = _read_to_eof(sock)
    assert reply.startswith(b"HTTP/1.1 101 Switching Protocols")
    assert _ends_with_goaway_protocol_error(reply)
    assert _bad_execs(backend) == []
    bystander.check()


def test_frame_length_past_the_end(server: StreamingServer, backend: HostProcessBackend,
                                   bystander: _Bystander) -> None:
    sock = _connect(server)
    frame = F.control_head(F.FrameType.SYN_STREAM, 0, 1000) + b"\x00\x00\x00\x01" + b"\x00" * 6
    sock.sendall(_spdy_request(_exec_url_path(server)) + frame)
    sock.shutdown(socket.SHUT_WR)
    reply = _read_to_eof(sock)
    assert reply.startswith(b"HTTP/1.1 101 Switching Protocols")
    assert _ends_with_goaway_protocol_error(reply)
    assert _bad_execs(backend) == []
    bystander.check()


def test_header_block_lengths_past_the_end(server: StreamingServer,
                                           backend: HostProcessBackend) -> None:
    bad_block = struct.pack(">II", 1, 1000) + b"streamtype"
    z = zlib.compressobj(zdict=DICTIONARY)
    block = z.compress(bad_block) + z.flush(zlib.Z_SYNC_FLUSH)
    payload = F.pack_bits(F.LAYOUTS[F.FrameType.SYN_STREAM][0], {"stream_id": 1}) + block
    sock = _connect(server)
    sock.sendall(_spdy_request(_exec_url_path(server))
                 + F.control_head(F.FrameType.SYN_STREAM, 0, len(payload)) + payload)
    assert _ends_with_goaway_protocol_error(_read_to_eof(sock))
    assert _bad_execs(backend) == []


def test_compression_bomb_in_headers(server: StreamingServer, backend: HostProcessBackend,
                                     bystander: _Bystander) -> None:
    bomb_block = encode_block({"streamtype": "error", "x-bomb": "A" * (64 << 20)})
    z = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
    block = z.compress(bomb_block) + z.flush(zlib.Z_SYNC_FLUSH)
    assert len(block) < 128 * 1024
    payload = F.pack_bits(F.LAYOUTS[F.FrameType.SYN_STREAM][0], {"stream_id": 1}) + block
    sock = _connect(server)
    started = time.monotonic()
    sock.sendall(_spdy_request(_exec_url_path(server))
                 + F.control_head(F.FrameType.SYN_STREAM, 0, len(payload)) + payload)
    assert _ends_with_goaway_protocol_error(_read_to_eof(sock))
    assert time.monotonic() - started < 2
    assert _bad_execs(backend) == []
    bystander.check()


def test_unknown_stream_type(server: StreamingServer, backend: HostProcessBackend,
                             bystander: _Bystander) -> None:
    compressor = HeaderCompressor()
    frames = b"".join(
        F.encode_control(F.ControlFrame(F.FrameType.SYN_STREAM, 0, {"stream_id": sid}),
                         compressor.compress({"streamtype": kind}))
        for sid, kind in ((1, "error"), (3, "bogus")))
    sock = _connect(server)
    sock.sendall(_spdy_request(_exec_url_path(server)) + frames)
    reply = _read_to_eof(sock)
    assert _ends_with_goaway_protocol_error(reply)
    assert _bad_execs(backend) == []
    bystander.check()


def test_half_open_before_request(make_server: Callable[..., StreamingServer],
                                  backend: HostProcessBackend) -> None:
    server = make_server(handshake_timeout="300ms")
    silent, partial = _connect(server), _connect(server)
    partial.sendall(b"POST /exec/x HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    assert _read_to_eof(silent) == b""
    assert _read_to_eof(partial) == b""
    assert time.monotonic() - started < 5


def test_half_open_after_upgrade(make_server: Callable[..., StreamingServer],
                                 backend: HostProcessBackend) -> None:
    server = make_server(stream_creation_timeout="300ms")
    sock = _connect(server)
    sock.sendall(_spdy_request(_exec_url_path(server)))
    reply = _read_to_eof(sock)  # no streams ever created: the server gives up
    assert reply.startswith(b"HTTP/1.1 101 Switching Protocols")
    assert _bad_execs(backend) == []


def test_idle_session_is_closed_and_process_killed(make_server: Callable[..., StreamingServer],
                                                   backend: HostProcessBackend) -> None:
    server = make_server(idle_timeout="500ms")
    url = server.request_exec(ExecRequest("c1", ("sleep", "1000")))
    started = time.monotonic()
    with pytest.raises(Exception):  # noqa: B017 - the session just ends; no status arrives
        result = asyncio.run(asyncio.wait_for(
            exec_spdy(url, CommandIO(stdout=print, stderr=print)), 10))
        assert result.exit_code != 0
        raise RuntimeError("session ended")
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while backend.execs[0].proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backend.execs[0].proc.returncode == -9


def test_websocket_unknown_channel_closes_only_that_session(server: StreamingServer,
                                                            backend: HostProcessBackend,
                                                            bystander: _Bystander) -> None:
    from crid.streaming.protocol.client import _ws_connect

    url = server.request_exec(ExecRequest("c1", ("sleep", "1000"), stdin=True))

    async def go() -> list[tuple[bool, bytes]]:
        ws, _ = await _ws_connect(url, ["v5.channel.k8s.io"], None)
        await asyncio.sleep(0.2)
        ws.send(b"\x09junk")
        got = []
        while (msg := await ws.recv()) is not None:
            got.append(msg)
        return got

    messages = asyncio.run(asyncio.wait_for(go(), 10))
    assert messages[0] == (False, b"\x01")  # the "connected" message on stdout
    deadline = time.monotonic() + 5
    sleeper = [e for e in backend.execs if e.proc.args == ("sleep", "1000")][0]
    while sleeper.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sleeper.proc.returncode == -9
    bystander.check()


@pytest.mark.parametrize("raw", [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(64) + b"\r\n\r\n",  # TLS to HTTP
    b"POST /exec/x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
    b"NOT HTTP AT ALL\r\n\r\n",
], ids=["tls-hello", "huge-header", "not-http"])
def test_malformed_http_gets_400(server: StreamingServer, raw: bytes) -> None:
    sock = _connect(server)
    sock.sendall(raw)
    assert _status_line(_read_to_eof(sock)) == b"HTTP/1.1 400 Bad Request"


def test_backend_failure_closes_gracefully(server: StreamingServer) -> None:
    """After a failed start the server half-closes and keeps reading until the client's EOF:
    closing with the client's frames unread would reset the connection (RST), and a reset
    can destroy the status before the client reads it."""
    compressor = HeaderCompressor()
    frames = b"".join(
        F.encode_control(F.ControlFrame(F.FrameType.SYN_STREAM, 0, {"stream_id": sid}),
                         compressor.compress({"streamtype": kind}))
        for sid, kind in ((1, "error"), (3, "stdout"), (5, "stderr")))
    sock = _connect(server)
    sock.sendall(_spdy_request(_exec_url_path(server, ("/nonexistent/binary",))) + frames)
    assert b"/nonexistent/binary" in _read_to_eof(sock)  # the status, then the server's FIN
    ping = F.encode_control(F.ControlFrame(F.FrameType.PING, 0, {"ping_id": 1}), b"")
    for _ in range(3):  # to a closed socket, the second write would fail with a reset
        sock.sendall(ping)
        time.sleep(0.05)
    sock.shutdown(socket.SHUT_WR)
    assert sock.recv(1) == b""
