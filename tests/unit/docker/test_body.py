"""Streamed request bodies: an upload route reads its body as it arrives, up to a limit,
and every other route keeps its small whole body; the server keeps serving either way."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from crid.docker.http import Request, Response, json_response
from crid.docker.router import Router
from crid.docker.server import DockerServer, DockerServerOptions

LIMIT = 1 << 20


def _upload(req: Request) -> Response:
    stream = req.body_stream()
    if req.flag("spool"):
        with stream.spool() as f:
            data = f.read()
    else:
        data = b"".join(iter(lambda: stream.read(1000), b""))
    return json_response({"size": len(data), "sha": hashlib.sha256(data).hexdigest()})


def _ignores_body(req: Request) -> Response:
    return json_response({"ok": True})


def _echo_json(req: Request) -> Response:
    return json_response(req.json())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    router = Router()
    router.add("POST", "/upload", _upload, streams_body=True)
    router.add("POST", "/ignore", _ignores_body, streams_body=True)
    router.add("POST", "/echo", _echo_json)
    sock, spool = tmp_path / "d.sock", tmp_path / "spool"
    srv = DockerServer(DockerServerOptions(sock, upload_limit=LIMIT, spool_dir=spool), router)
    srv.start()
    try:
        yield sock, spool
    finally:
        srv.stop()


def _exchange(path: Path, *parts: bytes) -> list[tuple[int, bytes]]:
    """Sends `parts` on one connection, then reads every response until the server closes."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
        try:
            for part in parts:
                s.sendall(part)
            s.shutdown(socket.SHUT_WR)
        except BrokenPipeError:
            pass  # the server refused the rest of a body: its reply is still there to read
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    return _responses(raw)


def _responses(raw: bytes) -> list[tuple[int, bytes]]:
    import h11

    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
    conn.send(h11.EndOfMessage())
    out: list[tuple[int, bytes]] = []
    conn.receive_data(raw)
    conn.receive_data(b"")
    status, body = 0, b""
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:  # the server closed after its last response
            break
        if isinstance(event, h11.Response):
            status, body = event.status_code, b""
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            out.append((status, body))
            if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                break
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                break
            conn.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
            conn.send(h11.EndOfMessage())
        elif isinstance(event, h11.InformationalResponse):
            out.append((event.status_code, b""))
        else:
            break
    return out


def _chunked(target: str, data: bytes, size: int = 7000) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(data[i:i + size]), data[i:i + size])
                    for i in range(0, len(data), size))
    return (f"POST {target} HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: application/x-tar\r\n\r\n").encode() + body + b"0\r\n\r\n"


def _sized(target: str, data: bytes, extra: str = "") -> bytes:
    return (f"POST {target} HTTP/1.1\r\nHost: d\r\nContent-Length: {len(data)}\r\n{extra}"
            "\r\n").encode() + data


def _expect(data: bytes) -> dict[str, object]:
    return {"size": len(data), "sha": hashlib.sha256(data).hexdigest()}


def test_chunked_upload_is_read_incrementally(server: tuple[Path, Path]) -> None:
    data = os.urandom(300_000)
    [(status, body)] = _exchange(server[0], _chunked("/v1.41/upload", data))
    assert (status, json.loads(body)) == (200, _expect(data))


def test_spooled_upload_leaves_no_file(server: tuple[Path, Path]) -> None:
    sock, spool = server
    data = os.urandom(200_000)
    [(status, body)] = _exchange(sock, _sized("/upload?spool=1", data))
    assert (status, json.loads(body)) == (200, _expect(data))
    assert list(spool.iterdir()) == []  # unnamed temp files: nothing to clean after a crash


def test_keep_alive_after_uploads_and_small_bodies(server: tuple[Path, Path]) -> None:
    a, b = os.urandom(5000), os.urandom(90_000)
    got = _exchange(server[0], _sized("/upload", a), _chunked("/upload?spool=1", b),
                    _sized("/echo", b'{"x": [1, 2]}'),
                    _sized("/ignore", b"unread but small"),
                    _sized("/echo", b'{"y": 3}', "Connection: close\r\n"))
    assert [(s, json.loads(body)) for s, body in got] == [
        (200, _expect(a)), (200, _expect(b)), (200, {"x": [1, 2]}), (200, {"ok": True}),
        (200, {"y": 3})]


def test_declared_length_past_the_limit_is_refused_unread(server: tuple[Path, Path]) -> None:
    sock, spool = server
    head = (f"POST /upload?spool=1 HTTP/1.1\r\nHost: d\r\nContent-Length: {10 << 30}\r\n"
            "\r\n").encode()
    [(status, body)] = _exchange(sock, head + b"x" * 1000)
    assert status == 413
    assert json.loads(body) == {"message": f"request body of {10 << 30} bytes is larger than "
                                           f"the limit of {LIMIT} bytes"}
    assert not spool.exists()


def test_chunked_body_past_the_limit_is_refused(server: tuple[Path, Path]) -> None:
    sock, spool = server
    got = _exchange(sock, _chunked("/upload?spool=1", b"z" * (LIMIT + 1)))
    assert got == [(413, json.dumps({"message": f"request body larger than the limit of "
                                                f"{LIMIT} bytes"}).encode() + b"\n")]
    assert list(spool.iterdir()) == []
    # The server still serves.
    [(status, _)] = _exchange(sock, _sized("/echo", b"{}"))
    assert status == 200


def test_small_route_keeps_its_whole_body_limit(server: tuple[Path, Path]) -> None:
    [(status, body)] = _exchange(server[0], _chunked("/echo", b"[" + b"1," * (3 << 20) + b"1]"))
    assert status == 413 and b"larger than the limit of 4194304" in body


def test_expect_100_continue_is_answered(server: tuple[Path, Path]) -> None:
    data = b"hello"
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(server[0]))
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\n"
                  b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 100 ")
        s.sendall(data)
        rest = b""
        while chunk := s.recv(65536):
            rest += chunk
    assert json.loads(rest.partition(b"\r\n\r\n")[2]) == _expect(data)


def test_client_closing_mid_body_does_not_stop_the_server(server: tuple[Path, Path]) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(server[0]))
        s.sendall(b"POST /upload?spool=1 HTTP/1.1\r\nHost: d\r\nContent-Length: 100000\r\n\r\n"
                  + b"a" * 10)
    [(status, _)] = _exchange(server[0], _sized("/echo", b"{}"))
    assert status == 200
    # the spool directory is made on first use, which may not have come yet
    assert not server[1].exists() or list(server[1].iterdir()) == []
