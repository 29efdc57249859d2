"""Streaming benchmarks: exec round trip of `true` and stdout throughput over exec.

The bench runner calls `bench_exec_true_rtt()` and `bench_exec_stdout_throughput()` (each
returns a dict of numbers); `python3 -m tests.bench.streaming_bench` prints them as JSON.
Both run crid's streaming server with the host-process backend in a child process (as the
daemon is one process and crictl another; in one process the GIL hand-offs between client and
server threads would dominate) and crid's own client here, so they measure the streaming path
(request → URL → upgrade → streams → exit status), not container start-up. `request_exec` is
called over a pipe, standing in for the Exec RPC.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import statistics
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from crid.streaming.protocol import ExecRequest, StreamingOptions, StreamingServer
from crid.streaming.protocol.client import CommandIO, exec_spdy, exec_websocket
from tests.integration.streaming.host_backend import HostProcessBackend


class _RemoteServer:
    """The streaming server in a child process; `request_exec` asks it over a pipe."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def request_exec(self, request: ExecRequest) -> str:
        self._conn.send(request)
        return str(self._conn.recv())


def _serve(conn: Connection) -> None:
    backend = HostProcessBackend()
    server = StreamingServer(StreamingOptions(), backend)
    server.start()
    try:
        while (request := conn.recv()) is not None:
            conn.send(server.request_exec(request))
    finally:
        server.stop()
        backend.close()


def _with_server(fn: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(target=_serve, args=(theirs,), daemon=True)
    child.start()
    try:
        return fn(_RemoteServer(ours))
    finally:
        ours.send(None)
        child.join(30)
        if child.is_alive():
            child.kill()


def bench_exec_true_rtt(runs: int = 200, transport: str = "spdy") -> dict[str, Any]:
    """Time from request_exec (what the Exec RPC calls) to the exit status of `true`."""
    call = exec_spdy if transport == "spdy" else exec_websocket

    def measure(server: Any) -> dict[str, Any]:
        async def go() -> list[float]:
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                url = server.request_exec(ExecRequest("bench", ("true",)))
                result = await call(url, CommandIO(stdout=lambda b: None, stderr=lambda b: None))
                assert result.exit_code == 0
                times.append(time.perf_counter() - start)
            return times
        times = asyncio.run(go())
        return {"name": f"streaming_exec_true_rtt_{transport}", "runs": runs,
                "median_ms": statistics.median(times) * 1e3,
                "p90_ms": sorted(times)[int(runs * 0.9)] * 1e3,
                "min_ms": min(times) * 1e3}
    return _with_server(measure)


def bench_exec_stdout_throughput(megabytes: int = 1024, transport: str = "spdy"
                                 ) -> dict[str, Any]:
    """Stream `megabytes` MiB of stdout from `head -c` through exec; MB/s (10^6 bytes/s)."""
    call = exec_spdy if transport == "spdy" else exec_websocket
    size = megabytes << 20

    def measure(server: Any) -> dict[str, Any]:
        received = [0]

        def count(chunk: bytes) -> None:
            received[0] += len(chunk)

        async def go() -> float:
            url = server.request_exec(ExecRequest(
                "bench", ("head", "-c", str(size), "/dev/zero"), stderr=False))
            start = time.perf_counter()
            result = await call(url, CommandIO(stdout=count))
            assert result.exit_code == 0 and received[0] == size, received
            return time.perf_counter() - start
        seconds = asyncio.run(go())
        return {"name": f"streaming_exec_stdout_throughput_{transport}", "bytes": size,
                "seconds": seconds, "mb_per_s": size / seconds / 1e6, "target_mb_per_s": 200}
    return _with_server(measure)


def main() -> None:
    results = [bench_exec_true_rtt(), bench_exec_true_rtt(transport="websocket"),
               bench_exec_stdout_throughput(), bench_exec_stdout_throughput(transport="websocket")]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
