"""The test client's verdicts: a session cut before its exit status is an error, not success."""

from __future__ import annotations

import asyncio
import socket

import pytest

from crid.streaming.protocol.client import CommandIO, _run_spdy_command
from crid.streaming.protocol.errors import StreamingError
from crid.streaming.protocol.remotecommand import V5
from crid.streaming.protocol.spdy.session import SpdySession
from crid.streaming.protocol.transport import StreamTransport


async def _sessions() -> tuple[SpdySession, SpdySession]:
    a, b = socket.socketpair()
    ends = [StreamTransport(*await asyncio.open_connection(sock=s)) for s in (a, b)]
    return SpdySession(ends[0], client=True), SpdySession(ends[1], client=False)


@pytest.mark.parametrize("finish", [True, False])
def test_spdy_command_without_its_status(finish: bool) -> None:
    async def go() -> None:
        client, server = await _sessions()
        runs = [asyncio.ensure_future(s.run()) for s in (client, server)]

        async def serve() -> None:
            streams = [await server.incoming.get() for _ in range(3)]
            if finish:  # an empty error stream, finished: success, as client-go reads it
                for stream in streams:
                    await stream.close_write()
                await asyncio.sleep(0.05)
            server.close()

        served = asyncio.ensure_future(serve())
        io = CommandIO(stdout=lambda b: None, stderr=lambda b: None)
        try:
            if finish:
                assert (await _run_spdy_command(client, V5, io)).exit_code == 0
            else:
                with pytest.raises(StreamingError, match="before the exit status"):
                    await _run_spdy_command(client, V5, io)
        finally:
            client.close()
            await asyncio.gather(served, *runs, return_exceptions=True)
    asyncio.run(asyncio.wait_for(go(), 20))
