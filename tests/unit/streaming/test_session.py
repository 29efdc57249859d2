"""The SPDY session over a socketpair: streams, flow control, pings, protocol errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from crid.streaming.protocol.errors import ProtocolError
from crid.streaming.protocol.spdy import frames as F
from crid.streaming.protocol.spdy.headers import HeaderCompressor
from crid.streaming.protocol.spdy.session import SessionLimits, SpdySession
from crid.streaming.protocol.transport import StreamTransport


async def _pair() -> tuple[StreamTransport, StreamTransport]:
    a, b = socket.socketpair()
    ra, wa = await asyncio.open_connection(sock=a)
    rb, wb = await asyncio.open_connection(sock=b)
    return StreamTransport(ra, wa), StreamTransport(rb, wb)


async def _running_pair() -> tuple[SpdySession, SpdySession, list[asyncio.Future[None]]]:
    """A client and a server session with default limits, both reading."""
    ta, tb = await _pair()
    client, server = SpdySession(ta, client=True), SpdySession(tb, client=False)
    return client, server, [asyncio.ensure_future(s.run()) for s in (client, server)]


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 20))


def test_streams_both_ways_with_flow_control() -> None:
    async def go() -> None:
        ta, tb = await _pair()
        client = SpdySession(ta, client=True, limits=SessionLimits(receive_window=65536))
        server = SpdySession(tb, client=False, limits=SessionLimits(receive_window=65536))
        client.announce_flow_control()
        runs = [asyncio.ensure_future(s.run()) for s in (client, server)]
        stream = await client.open_stream({"streamtype": "stdin"})
        peer = await server.incoming.get()
        assert peer.headers == {"streamtype": "stdin"}
        payload = bytes(range(256)) * 4096  # 1 MiB through a 64 KiB window
        got = bytearray()

        async def reader() -> None:
            while chunk := await peer.read():
                got.extend(chunk)

        r = asyncio.ensure_future(reader())
        await stream.write(payload)
        await stream.close_write()
        await r
        assert bytes(got) == payload
        assert server.enforce_windows and client.enforce_windows
        client.close()
        await asyncio.gather(*runs, return_exceptions=True)
    run(go)


def test_window_blocks_a_slow_reader_only() -> None:
    async def go() -> None:
        ta, tb = await _pair()
        client = SpdySession(ta, client=True, limits=SessionLimits(receive_window=65536))
        server = SpdySession(tb, client=False)
        client.announce_flow_control()
        runs = [asyncio.ensure_future(s.run()) for s in (client, server)]
        slow = await client.open_stream({"streamtype": "a"})
        fast = await client.open_stream({"streamtype": "b"})
        s_slow, s_fast = await server.incoming.get(), await server.incoming.get()
        await asyncio.sleep(0.05)
        writer = asyncio.ensure_future(s_slow.write(b"x" * 200_000))  # nobody reads 'slow'
        await asyncio.sleep(0.2)
        assert not writer.done()  # blocked on the 64 KiB window
        assert slow.buffered <= 65536
        await s_fast.write(b"fast")
        assert await fast.read() == b"fast"  # the other stream still flows
        got = 0
        while got < 200_000:
            got += len(await slow.read())
        await writer
        client.close()
        await asyncio.gather(*runs, return_exceptions=True)
    run(go)


def test_ping_is_echoed() -> None:
    async def go() -> None:
        client, server, runs = await _running_pair()
        await client.ping()
        await server.ping()
        client.close()
        await asyncio.gather(*runs, return_exceptions=True)
    run(go)


@pytest.mark.parametrize("raw,match", [
    (bytes.fromhex("8002 0001 00 00000a") + bytes(10), "version 2"),
    (bytes.fromhex("00000009 00 000003") + b"abc", "never opened"),
    (F.encode_control(F.ControlFrame(F.FrameType.SYN_STREAM, 0, {"stream_id": 2}),
                      HeaderCompressor().compress({})), "invalid stream id"),
    (bytes.fromhex("8003 0009 00 000008 00000000 00000000"), "WINDOW_UPDATE of 0"),
    (bytes.fromhex("8003 0001 00 ffffff"), "past the limit"),
    (bytes.fromhex("8003 0006 00 000004 0000"), "connection ended after 2"),
    (bytes.fromhex("8003 00"), "cut after 3"),
])
def test_protocol_errors(raw: bytes, match: str) -> None:
    async def go() -> None:
        ta, tb = await _pair()
        server = SpdySession(tb, client=False)
        ta.write(raw)
        await ta.drain()
        ta.writer.write_eof()
        with pytest.raises(ProtocolError, match=match):
            await server.run()
        tail = await ta.reader.read()
        assert tail[:8] == bytes.fromhex("8003000700000008") and tail[-4:] == b"\0\0\0\1"
    run(go)


def test_unknown_control_frame_is_ignored() -> None:
    async def go() -> None:
        ta, tb = await _pair()
        server = SpdySession(tb, client=False)
        ta.write(bytes.fromhex("8003 000a 00 000002 abcd"))  # type 10 (CREDENTIAL-era)
        ta.write(F.encode_control(F.ControlFrame(F.FrameType.PING, 0, {"ping_id": 1})))
        await ta.drain()
        ta.writer.write_eof()
        await server.run()
        assert await ta.reader.read() == bytes.fromhex("8003 0006 00 000004 00000001")
    run(go)


def test_unread_input_is_bounded_for_peers_without_flow_control() -> None:
    """A Go-style peer (no WINDOW_UPDATE) writing into unread streams is held back by TCP."""
    async def go() -> None:
        ta, tb = await _pair()
        client = SpdySession(ta, client=True)  # never announces flow control
        limits = SessionLimits(max_buffered=256 * 1024, max_session_buffered=512 * 1024)
        server = SpdySession(tb, client=False, limits=limits)
        runs = [asyncio.ensure_future(s.run()) for s in (client, server)]
        streams = [await client.open_stream({"streamtype": "data"}) for _ in range(8)]
        writers = [asyncio.ensure_future(s.write(b"z" * (4 << 20))) for s in streams]
        await asyncio.sleep(0.5)
        assert server.buffered <= 512 * 1024 + 256 * 1024  # limit plus one frame in flight
        assert not any(w.done() for w in writers)
        peers = [server.incoming.get_nowait() for _ in range(8)]
        total = 0

        async def drain(p) -> int:  # type: ignore[no-untyped-def]
            n = 0
            while n < (4 << 20):
                n += len(await p.read())
            return n
        total = sum(await asyncio.gather(*(drain(p) for p in peers)))
        await asyncio.gather(*writers)
        assert total == 8 * (4 << 20) and server.buffered == 0
        client.close()
        await asyncio.gather(*runs, return_exceptions=True)
    run(go)


class _GoLikeSession(SpdySession):
    """Like Go's spdystream: never sends SETTINGS or WINDOW_UPDATE."""

    def announce_flow_control(self) -> None:
        self.announced = False

    def send_window_update(self, stream_id: int, delta: int) -> None:
        pass


def test_client_does_not_stall_on_a_peer_without_flow_control() -> None:
    """Go's spdystream never sends WINDOW_UPDATE: more than 64 KiB must still get through."""
    async def go() -> None:
        ta, tb = await _pair()
        client = SpdySession(ta, client=True)
        client.announce_flow_control()
        peer = _GoLikeSession(tb, client=False)
        runs = [asyncio.ensure_future(s.run()) for s in (client, peer)]
        stream = await client.open_stream({"streamtype": "stdin"})
        theirs = await peer.incoming.get()
        writer = asyncio.ensure_future(stream.write(b"q" * (1 << 20)))
        got = 0
        while got < (1 << 20):
            got += len(await theirs.read())
        await writer
        assert not client.enforce_windows
        client.close()
        await asyncio.gather(*runs, return_exceptions=True)
    run(go)


def test_data_before_a_peer_reset_stays_readable() -> None:
    """As the kubelet's library does: write the status, then RST every stream at once."""
    async def go() -> None:
        client, server, runs = await _running_pair()
        stream = await client.open_stream({"streamtype": "error"})
        theirs = await server.incoming.get()
        await theirs.write(b'{"status":"Failure"}')
        theirs.reset()
        await asyncio.sleep(0.1)  # both frames have arrived before anyone reads
        assert stream.reset_status == F.RstStatus.CANCEL
        assert await stream.read() == b'{"status":"Failure"}'
        assert await stream.read() == b""
        client.close()
        await asyncio.gather(*runs, return_exceptions=True)
    run(go)


def test_a_stream_cut_by_the_session_end_is_told_from_one_finished() -> None:
    async def go() -> None:
        client, server, runs = await _running_pair()
        finished = await client.open_stream({"streamtype": "error"})
        cut = await client.open_stream({"streamtype": "stdout"})
        theirs = await server.incoming.get()
        await theirs.close_write()
        await server.incoming.get()
        await asyncio.sleep(0.05)
        server.close()  # no FIN on the second stream
        await asyncio.gather(*runs, return_exceptions=True)
        assert (await finished.read(), finished.cut) == (b"", False)
        assert (await cut.read(), cut.cut) == (b"", True)
    run(go)
