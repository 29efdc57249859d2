"""Attach and port-forward through a real crid: the monitor's attach socket, and TCP inside
the pod's network namespace."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import grpc
import pytest

from crid.api import api_pb2 as pb
from crid.streaming.protocol import TerminalSize
from crid.streaming.protocol.client import CommandIO, PortForwarder, exec_spdy
from tests.integration.containers.helpers import code_of, wait_for
from tests.integration.streaming.cri_rig import StreamRig, run_session

ECHO_PORT, HTTP_PORT = 7000, 8080


def attach_url(srig: StreamRig, cid: str, **kw: bool) -> str:
    return srig.rt.Attach(pb.AttachRequest(container_id=cid, **kw), timeout=30).url


def _watch_ticks(srig: StreamRig, cid: str) -> tuple[bytes, bytes]:
    """Attach, read until three ticks arrived, detach."""
    out, err = bytearray(), bytearray()
    got = asyncio.Event()

    def on_out(b: bytes) -> None:
        out.extend(b)
        if out.count(b"tick") >= 3:
            got.set()

    async def session() -> None:
        url = attach_url(srig, cid, stdout=True, stderr=True)
        task = asyncio.ensure_future(exec_spdy(url, CommandIO(stdout=on_out,
                                                              stderr=err.extend)))
        await asyncio.wait_for(got.wait(), 10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    asyncio.run(session())
    return bytes(out), bytes(err)


def test_attach_sees_output_and_detaching_keeps_the_container(srig: StreamRig) -> None:
    cid = srig.run("/bin/sh", "-c", "i=0; while true; do i=$((i+1)); echo tick$i; "
                   "echo err$i >&2; sleep 0.1; done")
    for _ in range(2):  # twice: the first detach left it running
        out, err = _watch_ticks(srig, cid)
        assert out.count(b"tick") >= 3 and b"err" in err
        assert srig.state(cid) == pb.CONTAINER_RUNNING


def test_attach_stdin_once_reaches_the_process_and_ends_it(srig: StreamRig) -> None:
    cid = srig.run("/bin/cat", stdin=True, stdin_once=True)
    out = bytearray()
    data = os.urandom(1 << 20)
    url = attach_url(srig, cid, stdin=True, stdout=True, stderr=True)
    result = run_session(url, CommandIO(stdin=data, stdout=out.extend, stderr=out.extend))
    assert (result.exit_code, bytes(out) == data) == (0, True)
    srig.wait_exited(cid)


def test_two_clients_attached_at_once(srig: StreamRig) -> None:
    cid = srig.run("/bin/sh", "-c", "read x; echo got:$x; exit 3", stdin=True)
    outs = [bytearray(), bytearray()]

    async def both() -> list[int]:
        watcher = asyncio.ensure_future(exec_spdy(
            attach_url(srig, cid, stdout=True), CommandIO(stdout=outs[0].extend)))
        await asyncio.sleep(0.5)
        writer = exec_spdy(attach_url(srig, cid, stdin=True, stdout=True),
                           CommandIO(stdin=b"hi\n", stdout=outs[1].extend))
        results = await asyncio.wait_for(asyncio.gather(watcher, writer), 20)
        return [r.exit_code for r in results]
    assert asyncio.run(both()) == [3, 3]
    assert bytes(outs[0]) == bytes(outs[1]) == b"got:hi\n"


def test_attach_tty_interactive_shell_with_resize(srig: StreamRig) -> None:
    cid = srig.run("/bin/sh", tty=True, stdin=True)
    out = bytearray()

    async def typed() -> AsyncIterator[bytes]:
        await asyncio.sleep(0.5)  # after the resize below
        yield b"busybox stty size; exit 4\n"

    url = attach_url(srig, cid, tty=True, stdin=True, stdout=True)
    result = run_session(url, CommandIO(stdin=typed(), stdout=out.extend, tty=True,
                                        resizes=_sizes(TerminalSize(width=99, height=33))))
    assert result.exit_code == 4
    assert b"33 99" in out, out
    srig.wait_exited(cid)


async def _sizes(*sizes: TerminalSize) -> AsyncIterator[TerminalSize]:
    for size in sizes:
        yield size


def test_attach_rpc_validation(srig: StreamRig) -> None:
    exited = srig.run("/bin/true")
    srig.wait_exited(exited)
    assert code_of(lambda: attach_url(srig, exited, stdout=True)) == \
        grpc.StatusCode.FAILED_PRECONDITION
    assert code_of(lambda: attach_url(srig, "f" * 64, stdout=True)) == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: attach_url(srig, srig.sleeper)) == grpc.StatusCode.INVALID_ARGUMENT


def pf_url(srig: StreamRig, pod_id: str, *ports: int) -> str:
    return srig.rt.PortForward(pb.PortForwardRequest(pod_sandbox_id=pod_id, port=list(ports)),
                               timeout=30).url


@pytest.fixture(scope="module")
def servers(srig: StreamRig) -> str:
    """An echo server and a web server listening on localhost inside the pod only."""
    # busybox nc takes its listen backlog from the number of l's: with the usual -ll (2), 50
    # simultaneous connects overflow it and some are reset (seen without any forwarder too).
    srig.run("/bin/nc", "-" + "l" * 64, "-p", str(ECHO_PORT), "-e", "/bin/cat")
    web = srig.run("/bin/sh", "-c", "mkdir -p /tmp/www && echo hello-from-pod > "
                   f"/tmp/www/index.html && exec /bin/busybox httpd -f -p 127.0.0.1:{HTTP_PORT} "
                   "-h /tmp/www")
    probe = "nc 127.0.0.1 {} </dev/null && echo up"
    wait_for("servers", lambda: all(
        srig.exec_sync(web, "/bin/sh", "-c", probe.format(p)).stdout.strip() == b"up"
        for p in (ECHO_PORT, HTTP_PORT)), 10)
    assert srig.pod is not None
    return srig.pod[0]


async def _echo(fwd: PortForwarder, payload: bytes) -> bytes:
    conn = await fwd.open(ECHO_PORT)
    await conn.write(payload)
    got = bytearray()
    while len(got) < len(payload) and (chunk := await conn.read()):
        got.extend(chunk)
    conn.close()
    return bytes(got)


@pytest.mark.parametrize("websocket", [False, True])
def test_port_forward_50_parallel_echo_connections(srig: StreamRig, servers: str,
                                                   websocket: bool) -> None:
    payloads = [os.urandom(64 << 10) for _ in range(50)]

    async def run() -> list[bytes]:
        fwd = await PortForwarder.connect(pf_url(srig, servers, ECHO_PORT), websocket=websocket)
        try:
            return await asyncio.wait_for(
                asyncio.gather(*(_echo(fwd, p) for p in payloads)), 60)
        finally:
            await fwd.close()
    assert asyncio.run(run()) == payloads


def test_port_forward_web_server_through_a_local_listener(srig: StreamRig, servers: str) -> None:
    async def run() -> bytes:
        fwd = await PortForwarder.connect(pf_url(srig, servers, HTTP_PORT))
        local = await fwd.serve_local(HTTP_PORT)
        port = local.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /index.html HTTP/1.0\r\nHost: pod\r\n\r\n")
            await writer.drain()
            body = await asyncio.wait_for(reader.read(), 10)
            writer.close()
            return body
        finally:
            local.close()
            await fwd.close()
    body = asyncio.run(run())
    assert body.startswith(b"HTTP/1.") and body.endswith(b"\r\n\r\nhello-from-pod\n"), body


def test_port_forward_to_a_closed_port_reports_an_error(srig: StreamRig, servers: str) -> None:
    async def run() -> str:
        fwd = await PortForwarder.connect(pf_url(srig, servers))
        try:
            conn = await fwd.open(9)
            return await asyncio.wait_for(conn.error(), 10)
        finally:
            await fwd.close()
    assert "refused" in asyncio.run(run()).lower()


def test_the_pod_port_is_not_on_the_host(srig: StreamRig, servers: str) -> None:
    # The forward really entered the pod: on the host nothing listens there.
    import socket

    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", HTTP_PORT))


def test_port_forward_rpc_validation(srig: StreamRig) -> None:
    assert code_of(lambda: pf_url(srig, "a" * 64, 80)) == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: pf_url(srig, "", 80)) == grpc.StatusCode.INVALID_ARGUMENT
    assert srig.pod is not None
    assert code_of(lambda: pf_url(srig, srig.pod[0], 70000)) == \
        grpc.StatusCode.INVALID_ARGUMENT
    stopped = srig.run_pod()[0]
    srig.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=stopped), timeout=60)
    assert code_of(lambda: pf_url(srig, stopped, 80)) == grpc.StatusCode.FAILED_PRECONDITION
