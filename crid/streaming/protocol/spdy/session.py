"""An asyncio SPDY/3.1 session (client or server side) with streams and flow control.

Flow control (draft 3.1, section 2.6.8): every stream and the session start with a 64 KiB send
window that WINDOW_UPDATE frames reopen. Go's spdystream (kubelet, crictl, kubectl, containerd)
neither sends WINDOW_UPDATE nor honours it; it relies on TCP backpressure. So a session honours
the peer's windows only once the peer has shown it speaks flow control (sent SETTINGS or
WINDOW_UPDATE); our own SETTINGS/WINDOW_UPDATEs go out when we announce (the client does at
once; the server answers a peer that announced), and Go peers ignore them.

Inbound data is buffered per stream and per session up to a bound; past it the read loop waits
for the readers, which backpressures the peer through TCP.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from crid.streaming.protocol.errors import ProtocolError, SessionClosed
from crid.streaming.protocol.spdy import frames as F
from crid.streaming.protocol.spdy.headers import (
    HeaderCompressor,
    HeaderDecompressor,
)
from crid.streaming.protocol.spdy.stream import SessionLimits, SpdyStream
from crid.streaming.protocol.transport import ByteTransport


class SpdySession:
    """Reads frames in `run()`; streams opened by the peer arrive on `incoming`."""

    def __init__(self, transport: ByteTransport, *, client: bool,
                 limits: SessionLimits | None = None,
                 on_stream: Callable[[SpdyStream], None] | None = None) -> None:
        self.transport, self.client = transport, client
        self.limits = limits or SessionLimits()
        self.incoming: asyncio.Queue[SpdyStream] = asyncio.Queue()
        self._on_stream = on_stream
        self._compress = HeaderCompressor()
        self._decompress = HeaderDecompressor(self.limits.max_header_block)
        self.streams: dict[int, SpdyStream] = {}
        self._next_id = 1 if client else 2
        self._next_ping = 1 if client else 2
        self._last_peer_id = 0
        self.announced = False       # we sent SETTINGS and send WINDOW_UPDATEs
        self.enforce_windows = False  # the peer sends them: honour its windows
        self.peer_initial_window = F.DEFAULT_WINDOW
        self.send_window = F.DEFAULT_WINDOW
        self._window_changed = asyncio.Event()
        self._session_unacked = 0
        self.buffered = 0
        self._space = asyncio.Event()
        self._space.set()
        self._pings: dict[int, asyncio.Future[None]] = {}
        self.goaway_received = False
        self.closing = False
        self.closed = asyncio.Event()
        self.error: Exception | None = None

    @property
    def is_closed(self) -> bool:
        return self.closed.is_set()

    # ---- sending -------------------------------------------------------------------------

    def send_control(self, frame: F.ControlFrame, headers: dict[str, str] | None = None) -> None:
        if self.is_closed:
            raise SessionClosed("SPDY session is closed")
        # Compress and write without an await between: header blocks share one zlib context
        # and must reach the peer in the order they were compressed.
        block = self._compress.compress(headers) if headers is not None else b""
        self.transport.write(F.encode_control(frame, block))

    def write_data(self, stream_id: int, flags: int, data: bytes | memoryview) -> None:
        if self.is_closed:
            raise SessionClosed("SPDY session is closed")
        self.transport.write(F.data_head(stream_id, flags, len(data)))
        if len(data):
            self.transport.write(data)

    async def drain(self) -> None:
        await self.transport.drain()

    def announce_flow_control(self) -> None:
        """Tell the peer our receive windows (only sent to flow-control-aware peers)."""
        self.announced = True
        win = self.limits.receive_window
        self.send_control(F.ControlFrame(F.FrameType.SETTINGS, 0, {},
                                         settings=[(0, F.SETTINGS_INITIAL_WINDOW_SIZE, win)]))
        if self.limits.session_window > F.DEFAULT_WINDOW:
            self.send_window_update(0, self.limits.session_window - F.DEFAULT_WINDOW)

    def send_window_update(self, stream_id: int, delta: int) -> None:
        with contextlib.suppress(SessionClosed):
            self.send_control(F.ControlFrame(F.FrameType.WINDOW_UPDATE, 0,
                                             {"stream_id": stream_id, "delta": delta}))

    def credit_session(self, n: int) -> None:
        if not self.announced:
            return
        self._session_unacked += n
        if self._session_unacked >= self.limits.session_window // 2:
            self.send_window_update(0, self._session_unacked)
            self._session_unacked = 0

    async def wait_window(self, stream: SpdyStream, want: int) -> int:
        """Wait until both windows are open; return how many bytes may be sent now."""
        while True:
            stream._check_writable()
            n = min(want, stream.send_window, self.send_window, self.limits.max_frame)
            if n > 0:
                return n
            event = self._window_changed
            closed = asyncio.ensure_future(self.closed.wait())
            waiter = asyncio.ensure_future(event.wait())
            await asyncio.wait({closed, waiter}, return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
            waiter.cancel()

    def _window_opened(self) -> None:
        self._window_changed.set()
        self._window_changed = asyncio.Event()

    async def open_stream(self, headers: dict[str, str], fin: bool = False,
                          timeout: float = 30.0) -> SpdyStream:
        """Open a stream and wait for its SYN_REPLY. Raises SessionClosed."""
        sid = self._next_id
        self._next_id += 2
        stream = SpdyStream(self, sid, headers)
        stream.local_closed = fin
        self.streams[sid] = stream
        self.send_control(F.ControlFrame(F.FrameType.SYN_STREAM, F.FLAG_FIN if fin else 0,
                                         {"stream_id": sid}), headers)
        await self.drain()
        try:
            await asyncio.wait_for(stream.replied.wait(), timeout)
        except TimeoutError as e:
            raise SessionClosed(f"no SYN_REPLY for stream {sid} within {timeout}s") from e
        if not stream.got_reply:
            raise SessionClosed(f"SPDY stream {sid} refused ({stream.reset_status})")
        return stream

    def reply(self, stream: SpdyStream, headers: dict[str, str] | None = None) -> None:
        self.send_control(F.ControlFrame(F.FrameType.SYN_REPLY, 0, {"stream_id": stream.id}),
                          headers or {})

    async def ping(self, timeout: float = 10.0) -> None:
        pid = self._next_ping
        self._next_ping += 2
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pings[pid] = fut
        self.send_control(F.ControlFrame(F.FrameType.PING, 0, {"ping_id": pid}))
        try:
            await asyncio.wait_for(fut, timeout)
        finally:
            self._pings.pop(pid, None)

    def goaway(self, status: int = F.GoAwayStatus.OK) -> None:
        with contextlib.suppress(SessionClosed):
            self.send_control(F.ControlFrame(F.FrameType.GOAWAY, 0, {
                "last_good_stream_id": self._last_peer_id, "status": status}))

    def close(self, status: int = F.GoAwayStatus.OK) -> None:
        """Send GOAWAY and close the transport; every stream reads EOF."""
        if self.is_closed:
            return
        self.goaway(status)
        self._shutdown()
        self.transport.close()

    async def close_gracefully(self, runner: asyncio.Future[None], timeout: float = 2.0) -> None:
        """GOAWAY, half-close, and wait (bounded) for the peer to close its side.

        Closing a socket with unread input makes the kernel send RST, which can destroy output
        the peer has not read yet; so the peer's EOF is awaited (its frames read) first.
        """
        if self.is_closed:
            return
        self.closing = True
        self.goaway()
        write_eof = getattr(self.transport, "write_eof", None)
        with contextlib.suppress(Exception):
            await self.drain()
            if write_eof is not None:
                write_eof()
        with contextlib.suppress(TimeoutError, Exception):
            await asyncio.wait_for(asyncio.shield(runner), timeout)
        self.close()

    def _shutdown(self) -> None:
        self.closed.set()
        self._window_opened()
        for stream in list(self.streams.values()):
            stream.cut = not stream.remote_closed and stream.reset_status is None
            stream.remote_closed = True
            stream._readable.set()
            stream._drained.set()
            stream.replied.set()
        for fut in self._pings.values():
            if not fut.done():
                fut.set_exception(SessionClosed("SPDY session closed"))

    def unbuffer(self, n: int) -> None:
        self.buffered -= n
        if self.buffered <= self.limits.max_session_buffered // 2:
            self._space.set()

    async def wait_space(self) -> None:
        if self.buffered > self.limits.max_session_buffered:
            self._space.clear()
            closed = asyncio.ensure_future(self.closed.wait())
            space = asyncio.ensure_future(self._space.wait())
            await asyncio.wait({closed, space}, return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
            space.cancel()

    def forget(self, stream: SpdyStream) -> None:
        self.streams.pop(stream.id, None)

    def maybe_forget(self, stream: SpdyStream) -> None:
        if stream.local_closed and stream.remote_closed and not stream._chunks:
            self.forget(stream)

    # ---- receiving -----------------------------------------------------------------------

    async def run(self) -> None:
        """Read and dispatch frames until EOF or GOAWAY+EOF.

        Raises:
            ProtocolError: a malformed frame; a GOAWAY(PROTOCOL_ERROR) was sent first.
        """
        try:
            while True:
                try:
                    head = F.parse_head(await self.transport.readexactly(8))
                except asyncio.IncompleteReadError as e:
                    if e.partial:
                        raise ProtocolError(
                            f"SPDY frame header cut after {len(e.partial)} bytes") from e
                    return
                await self._read_frame(head)
        except SessionClosed:
            return  # we can no longer answer (we half-closed or the socket died): done
        except ProtocolError as e:
            if self.closing:
                return  # a peer cut mid-frame while we were closing anyway: not worth an error
            self.error = e
            self.goaway(F.GoAwayStatus.PROTOCOL_ERROR)
            raise
        finally:
            self._shutdown()
            self.transport.close()

    async def _read_frame(self, head: F.FrameHead) -> None:
        if head.control and head.length > self.limits.max_control_frame:
            raise ProtocolError(f"SPDY control frame of {head.length} bytes is past the limit")
        try:
            payload = await self.transport.readexactly(head.length) if head.length else b""
        except asyncio.IncompleteReadError as e:
            raise ProtocolError(f"SPDY frame declares {head.length} bytes, connection ended "
                                f"after {len(e.partial)}") from e
        if not head.control:
            await self._on_data(head.type, head.flags, payload)
            return
        if head.version != F.VERSION:
            raise ProtocolError(f"SPDY version {head.version} frame, only 3 is spoken")
        if head.type not in F.LAYOUTS.keys():
            return  # unknown control frames are ignored (draft 3.1, section 2.2.1)
        frame, block = F.decode_control(head, payload)
        headers = self._decompress.decompress(block) if F.LAYOUTS[frame.type][1] == "headers" \
            else None
        self._dispatch(frame, headers)

    def _dispatch(self, frame: F.ControlFrame, headers: dict[str, str] | None) -> None:
        t = F.FrameType
        handler = {
            t.SYN_STREAM: self._on_syn_stream, t.SYN_REPLY: self._on_syn_reply,
            t.RST_STREAM: self._on_rst, t.SETTINGS: self._on_settings, t.PING: self._on_ping,
            t.GOAWAY: self._on_goaway, t.HEADERS: self._on_headers,
            t.WINDOW_UPDATE: self._on_window_update,
        }[frame.type]
        handler(frame, headers or {})

    def _on_syn_stream(self, frame: F.ControlFrame, headers: dict[str, str]) -> None:
        sid = frame["stream_id"]
        peer_parity = 0 if self.client else 1
        if sid == 0 or sid % 2 != peer_parity or sid <= self._last_peer_id:
            raise ProtocolError(f"SPDY SYN_STREAM with invalid stream id {sid}")
        self._last_peer_id = sid
        stream = SpdyStream(self, sid, headers)
        if self.goaway_received or len(self.streams) >= self.limits.max_streams:
            stream.reset(F.RstStatus.REFUSED_STREAM)
            return
        self.streams[sid] = stream
        if frame.flags & F.FLAG_UNIDIRECTIONAL:
            stream.local_closed = True
        if frame.flags & F.FLAG_FIN:
            stream.remote_closed = True
        if self._on_stream is not None:
            self._on_stream(stream)
        else:
            self.reply(stream)
            self.incoming.put_nowait(stream)

    def _known(self, sid: int) -> SpdyStream | None:
        stream = self.streams.get(sid)
        if stream is None and not self._was_opened(sid):
            raise ProtocolError(f"SPDY frame for stream {sid}, which was never opened")
        return stream

    def _was_opened(self, sid: int) -> bool:
        if sid == 0:
            return False
        ours = sid % 2 == (1 if self.client else 0)
        return sid < self._next_id if ours else sid <= self._last_peer_id

    def _on_syn_reply(self, frame: F.ControlFrame, headers: dict[str, str]) -> None:
        stream = self._known(frame["stream_id"])
        if stream is None:
            return
        stream.reply_headers = headers
        stream.got_reply = True
        stream.replied.set()
        if frame.flags & F.FLAG_FIN:
            stream.on_data(b"", True)

    def _on_headers(self, frame: F.ControlFrame, headers: dict[str, str]) -> None:
        stream = self._known(frame["stream_id"])
        if stream is None:
            return
        stream.headers.update(headers)
        if frame.flags & F.FLAG_FIN:
            stream.on_data(b"", True)

    def _on_rst(self, frame: F.ControlFrame, _: dict[str, str]) -> None:
        stream = self.streams.get(frame["stream_id"])
        if stream is not None:
            stream.on_reset(frame["status"])

    def _on_settings(self, frame: F.ControlFrame, _: dict[str, str]) -> None:
        for _flags, sid, value in frame.settings or []:
            if sid == F.SETTINGS_INITIAL_WINDOW_SIZE:
                if value > 0x7FFFFFFF:
                    raise ProtocolError(f"SPDY initial window {value} too large")
                delta = value - self.peer_initial_window
                self.peer_initial_window = value
                for stream in self.streams.values():
                    stream.send_window += delta
        self._peer_speaks_flow_control()

    def _on_window_update(self, frame: F.ControlFrame, _: dict[str, str]) -> None:
        sid, delta = frame["stream_id"], frame["delta"]
        if delta == 0:
            raise ProtocolError(f"SPDY WINDOW_UPDATE of 0 for stream {sid}")
        if sid == 0:
            self.send_window += delta
        elif (stream := self.streams.get(sid)) is not None:
            stream.send_window += delta
        self._peer_speaks_flow_control()

    def _peer_speaks_flow_control(self) -> None:
        self.enforce_windows = True
        if not self.announced:
            self.announce_flow_control()
        self._window_opened()

    def _on_ping(self, frame: F.ControlFrame, _: dict[str, str]) -> None:
        pid = frame["ping_id"]
        if pid % 2 == self._next_ping % 2:
            fut = self._pings.get(pid)
            if fut is not None and not fut.done():
                fut.set_result(None)
        else:
            self.send_control(F.ControlFrame(F.FrameType.PING, 0, {"ping_id": pid}))

    def _on_goaway(self, frame: F.ControlFrame, _: dict[str, str]) -> None:
        self.goaway_received = True

    async def _on_data(self, sid: int, flags: int, payload: bytes) -> None:
        stream = self._known(sid)
        if stream is None or stream.reset_status is not None or self.closing:
            return  # closing: nobody reads any more, and buffering would stall the drain
        if stream.remote_closed:
            stream.reset(F.RstStatus.STREAM_ALREADY_CLOSED)
            return
        stream.on_data(payload, bool(flags & F.FLAG_FIN))
        await stream.wait_drained()
