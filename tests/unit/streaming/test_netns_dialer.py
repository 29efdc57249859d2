"""connect_local in the host namespace (netns_path None): the IPv4-then-IPv6 dial and errors."""

from __future__ import annotations

import asyncio
import socket

import pytest

from crid.streaming.backend.netns_dialer import connect_local
from crid.streaming.protocol import BackendError


def test_connects_to_a_loopback_listener() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        async def run() -> tuple[str, int]:
            sock = await connect_local(None, port, "pod p")
            with sock:
                return sock.getpeername()[:2]  # type: ignore[no-any-return]
        assert asyncio.run(run()) == ("127.0.0.1", port)


def test_refused_port_names_the_reason() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    with pytest.raises(BackendError, match="Connection refused"):
        asyncio.run(connect_local(None, port, "pod p"))


def test_missing_namespace_is_a_backend_error() -> None:
    with pytest.raises(BackendError, match="entering /nonexistent/netns"):
        asyncio.run(connect_local("/nonexistent/netns", 80, "pod p"))
