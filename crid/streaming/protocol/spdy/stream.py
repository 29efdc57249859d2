"""One SPDY stream: buffered input with backpressure, flow-controlled output, FIN and RST."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from crid.streaming.protocol.errors import SessionClosed
from crid.streaming.protocol.spdy import frames as F
from crid.streaming.protocol.spdy.headers import MAX_HEADER_BLOCK


@dataclass(frozen=True)
class SessionLimits:
    # Windows we advertise to flow-control-aware peers. The session window is larger than a
    # stream's so that one unread stream cannot hold the whole session's window.
    receive_window: int = 2 * 1024 * 1024
    session_window: int = 16 * 1024 * 1024
    max_frame: int = 256 * 1024            # largest DATA payload we send
    max_control_frame: int = 1024 * 1024   # largest control frame we accept
    max_header_block: int = MAX_HEADER_BLOCK
    max_streams: int = 1000
    max_buffered: int = 4 * 1024 * 1024    # per-stream inbound bytes before backpressure
    max_session_buffered: int = 32 * 1024 * 1024  # all streams together


class StreamSession(Protocol):
    """What a stream needs of its session (SpdySession is one): so the stream never imports
    the session that imports it."""

    peer_initial_window: int
    send_window: int
    buffered: int
    announced: bool
    enforce_windows: bool

    @property
    def limits(self) -> SessionLimits: ...
    @property
    def is_closed(self) -> bool: ...
    def send_control(self, frame: F.ControlFrame,
                     headers: dict[str, str] | None = None) -> None: ...
    def write_data(self, stream_id: int, flags: int, data: bytes | memoryview) -> None: ...
    async def drain(self) -> None: ...
    def unbuffer(self, n: int) -> None: ...
    def forget(self, stream: SpdyStream) -> None: ...
    def maybe_forget(self, stream: SpdyStream) -> None: ...
    def send_window_update(self, stream_id: int, delta: int) -> None: ...
    def credit_session(self, n: int) -> None: ...
    async def wait_window(self, stream: SpdyStream, want: int) -> int: ...
    async def wait_space(self) -> None: ...


class SpdyStream:
    """One SPDY stream: `read` until b"", `write`, `close_write` (FIN), `reset`."""

    def __init__(self, session: StreamSession, stream_id: int, headers: dict[str, str]) -> None:
        self.session, self.id, self.headers = session, stream_id, headers
        self.reply_headers: dict[str, str] = {}
        self.replied = asyncio.Event()
        self.got_reply = False
        self.send_window = session.peer_initial_window
        self.local_closed = False
        self.remote_closed = False
        self.reset_status: int | None = None
        self.cut = False  # the session ended before the peer's FIN or RST
        self._chunks: deque[bytes] = deque()
        self.buffered = 0
        self._readable = asyncio.Event()
        self._drained = asyncio.Event()
        self._unacked = 0

    async def read(self) -> bytes:
        """Next chunk of data, b"" at FIN, session end or reset."""
        while not self._chunks:
            if self.remote_closed or self.reset_status is not None:
                return b""
            self._readable.clear()
            await self._readable.wait()
        chunk = self._chunks.popleft()
        self.buffered -= len(chunk)
        self.session.unbuffer(len(chunk))
        if self.buffered <= self.session.limits.max_buffered // 2:
            self._drained.set()
        self._credit(len(chunk))
        return chunk

    def _credit(self, n: int) -> None:
        self._unacked += n
        s = self.session
        if not s.announced or self.remote_closed:
            s.credit_session(n)
            return
        if self._unacked >= s.limits.receive_window // 2:
            s.send_window_update(self.id, self._unacked)
            self._unacked = 0
        s.credit_session(n)

    async def write(self, data: bytes | memoryview) -> None:
        """Send data, split in frames within the send windows. Raises SessionClosed."""
        view = memoryview(data)
        s = self.session
        while len(view):
            self._check_writable()
            if s.enforce_windows:
                n = await s.wait_window(self, len(view))
            else:
                n = min(len(view), s.limits.max_frame)
            s.write_data(self.id, 0, view[:n])
            self.send_window -= n
            s.send_window -= n
            view = view[n:]
            await s.drain()

    def _check_writable(self) -> None:
        if self.reset_status is not None:
            raise SessionClosed(f"SPDY stream {self.id} was reset ({self.reset_status})")
        if self.local_closed:
            raise SessionClosed(f"SPDY stream {self.id} is closed for writing")
        if self.session.is_closed:
            raise SessionClosed(f"SPDY session closed under stream {self.id}")

    async def close_write(self) -> None:
        """Half-close: an empty DATA frame with FIN. No-op if already closed or reset."""
        if self.local_closed or self.reset_status is not None or self.session.is_closed:
            return
        self.local_closed = True
        with contextlib.suppress(SessionClosed):
            self.session.write_data(self.id, F.FLAG_FIN, b"")
            await self.session.drain()
        self.session.maybe_forget(self)

    def reset(self, status: int = F.RstStatus.CANCEL) -> None:
        """Abort the stream both ways with RST_STREAM; unread input is dropped."""
        if self.reset_status is None:
            with contextlib.suppress(SessionClosed):
                self.session.send_control(F.ControlFrame(
                    F.FrameType.RST_STREAM, 0, {"stream_id": self.id, "status": status}))
        self.discard()
        self.on_reset(status)

    def on_reset(self, status: int) -> None:
        """The peer reset the stream: no more writes, but what arrived before stays readable.

        The kubelet's streaming library (and so containerd and CRI-O) resets every stream
        right after writing the exit status, and Go's spdystream still delivers data that
        preceded a RST_STREAM: dropping it would lose the status and the end of the output.
        """
        self.reset_status = status
        self._readable.set()
        self._drained.set()
        self.replied.set()
        self.session.forget(self)

    def on_data(self, data: bytes, fin: bool) -> None:
        if data:
            self._chunks.append(data)
            self.buffered += len(data)
            self.session.buffered += len(data)
            self._drained.clear()
        if fin:
            self.remote_closed = True
            self.session.maybe_forget(self)
        self._readable.set()

    async def wait_drained(self) -> None:
        """Backpressure: hold the read loop while this stream or the session holds too much."""
        if self.buffered > self.session.limits.max_buffered:
            await self._drained.wait()
        await self.session.wait_space()

    def discard(self) -> None:
        """Drop buffered input (reset or forgotten streams must not pin session memory)."""
        self.session.unbuffer(self.buffered)
        self.buffered = 0
        self._chunks.clear()
