"""Fixtures: a streaming server on loopback with the host-process backend."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from crid.streaming.protocol import StreamingOptions, StreamingServer
from tests.integration.streaming.host_backend import HostProcessBackend


@pytest.fixture
def backend() -> Iterator[HostProcessBackend]:
    b = HostProcessBackend()
    yield b
    b.close()


@pytest.fixture
def make_server(backend: HostProcessBackend) -> Iterator[Callable[..., StreamingServer]]:
    servers: list[StreamingServer] = []

    def make(**options: object) -> StreamingServer:
        server = StreamingServer(StreamingOptions(**options), backend)  # type: ignore[arg-type]
        server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., StreamingServer]) -> StreamingServer:
    return make_server()


# The CRI streaming tests' module-scoped rig: a real crid with a pod and a sleeping container.
from tests.integration.streaming.cri_rig import srig  # noqa: E402, F401
