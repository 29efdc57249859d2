"""Attach to a long-running host process's stdio."""

from __future__ import annotations

import asyncio
import time

import pytest

from crid.streaming.protocol import AttachRequest, StreamingServer
from crid.streaming.protocol.client import CommandIO, exec_spdy, exec_websocket
from tests.integration.streaming.host_backend import HostProcessBackend


@pytest.mark.parametrize("transport", ["spdy", "websocket"])
def test_attach_reads_output_and_exit_code(server: StreamingServer, backend: HostProcessBackend,
                                           transport: str) -> None:
    backend.add_container("app", ["sh", "-c",
                                  "for i in $(seq 1 20); do echo line $i; sleep 0.02; done; "
                                  "echo bye >&2; exit 3"])
    out, err = bytearray(), bytearray()
    url = server.request_attach(AttachRequest("app"))
    call = exec_spdy if transport == "spdy" else exec_websocket
    result = asyncio.run(asyncio.wait_for(call(url, CommandIO(stdout=out.extend,
                                                             stderr=err.extend)), 30))
    assert result.exit_code == 3
    assert bytes(out) == b"".join(f"line {i}\n".encode() for i in range(1, 21))
    assert bytes(err) == b"bye\n"


def test_detach_leaves_container_running(server: StreamingServer,
                                         backend: HostProcessBackend) -> None:
    proc = backend.add_container("app", ["sh", "-c", "while true; do echo tick; sleep 0.05; done"])
    out = bytearray()
    url = server.request_attach(AttachRequest("app", stderr=False))

    async def attach_then_leave() -> None:
        task = asyncio.ensure_future(exec_spdy(url, CommandIO(stdout=out.extend)))
        while b"tick\ntick\n" not in out:
            await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(asyncio.wait_for(attach_then_leave(), 20))
    time.sleep(0.3)
    assert proc.poll() is None


def test_attach_stdin_reaches_process(server: StreamingServer,
                                      backend: HostProcessBackend) -> None:
    backend.add_container("app", ["sh", "-c", "read line; echo got $line; exit 0"])
    out = bytearray()
    url = server.request_attach(AttachRequest("app", stdin=True, stderr=False))
    result = asyncio.run(asyncio.wait_for(
        exec_spdy(url, CommandIO(stdin=b"hello\n", stdout=out.extend)), 20))
    assert (result.exit_code, bytes(out)) == (0, b"got hello\n")


def test_attach_to_unknown_container_reports_error(server: StreamingServer) -> None:
    url = server.request_attach(AttachRequest("ghost"))
    result = asyncio.run(asyncio.wait_for(
        exec_spdy(url, CommandIO(stdout=lambda b: None, stderr=lambda b: None)), 20))
    assert result.status is not None
    assert (result.exit_code, result.status["reason"]) == (1, "InternalError")
    assert "no container ghost" in result.status["message"]
