"""Exec and attach sessions: a process handle wired to the client's streams.

The transport-neutral part (`serve_process`) pumps the process fds to and from `Endpoints`;
`serve_spdy_command` builds them from SPDY streams (by their `streamType` header), and
`wschannels.serve_ws_command` from WebSocket channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from crid.streaming.protocol.backend import ProcessHandle
from crid.streaming.protocol.errors import BackendError, ProtocolError, SessionClosed
from crid.streaming.protocol.fdio import read_fd, set_nonblocking, write_fd
from crid.streaming.protocol.requests import TerminalSize
from crid.streaming.protocol.spdy.session import SpdySession
from crid.streaming.protocol.spdy.stream import SpdyStream
from crid.streaming.protocol.status import encode_status, exit_status, internal_error_status

V5, V4, V3, V2, V1 = ("v5.channel.k8s.io", "v4.channel.k8s.io", "v3.channel.k8s.io",
                      "v2.channel.k8s.io", "channel.k8s.io")
SPDY_PROTOCOLS = (V5, V4, V3, V2, V1)
STREAM_TYPES = ("error", "stdin", "stdout", "stderr", "resize")
MAX_RESIZE_BUFFER = 4096


class Sink(Protocol):
    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...


@dataclass
class Endpoints:
    """The client's side of a session, whatever the transport."""

    stdin: Callable[[], Awaitable[bytes]] | None
    stdout: Sink | None
    stderr: Sink | None
    resize: Callable[[], Awaitable[TerminalSize | None]] | None
    write_status: Callable[[dict[str, Any]], Awaitable[None]]
    gone: asyncio.Future[Any]


@dataclass(frozen=True)
class StdioOptions:
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool


StartProcess = Callable[[], Awaitable[ProcessHandle]]


class ResizeDecoder:
    """Splits a byte stream of concatenated JSON TerminalSize objects."""

    def __init__(self) -> None:
        self._buf = ""
        self._json = json.JSONDecoder()

    def feed(self, data: bytes) -> list[TerminalSize]:
        self._buf += data.decode(errors="replace")
        out: list[TerminalSize] = []
        while True:
            text = self._buf.lstrip()
            if not text:
                self._buf = ""
                return out
            try:
                value, end = self._json.raw_decode(text)
            except ValueError:
                if len(text) > MAX_RESIZE_BUFFER:
                    raise ProtocolError("resize stream carries no JSON object") from None
                self._buf = text
                return out
            self._buf = text[end:]
            out.append(_size(value))


def _size(value: Any) -> TerminalSize:
    try:
        w, h = int(value["Width"]), int(value["Height"])
    except (TypeError, KeyError, ValueError) as e:
        raise ProtocolError(f"resize event {value!r} is not {{Width, Height}}") from e
    if not (0 <= w < 65536 and 0 <= h < 65536):
        raise ProtocolError(f"resize event {w}x{h} out of range")
    return TerminalSize(w, h)


async def _pump_out(fd: int, sink: Sink | None) -> None:
    while data := await read_fd(fd):
        if sink is not None:
            try:
                await sink.write(data)
            except SessionClosed:
                sink = None  # client stopped reading this stream; keep draining the fd
    if sink is not None:
        with contextlib.suppress(SessionClosed):
            await sink.close()


async def _pump_in(source: Callable[[], Awaitable[bytes]], handle: ProcessHandle) -> None:
    fd, open_ = handle.stdin, True
    while data := await source():
        if open_ and fd is not None:
            open_ = await write_fd(fd, data)
    handle.close_stdin()


async def _pump_resize(source: Callable[[], Awaitable[TerminalSize | None]],
                       handle: ProcessHandle) -> None:
    while (size := await source()) is not None:
        handle.resize(size)


async def _first(*aws: asyncio.Future[Any]) -> None:
    await asyncio.wait(aws, return_when=asyncio.FIRST_COMPLETED)


async def serve_process(handle: ProcessHandle, ends: Endpoints, kill_on_gone: bool) -> int | None:
    """Pump until the process exits and its output is drained; write the exit status.

    Returns the exit code, or None when the client went away first (then an exec'd process is
    killed). The handle is closed in every case.
    """
    set_nonblocking(handle.stdin, handle.stdout, handle.stderr)
    outs = [asyncio.ensure_future(_pump_out(fd, sink))
            for fd, sink in ((handle.stdout, ends.stdout), (handle.stderr, ends.stderr))
            if fd is not None]
    side: list[asyncio.Future[None]] = []
    if ends.stdin is not None and handle.stdin is not None:
        side.append(asyncio.ensure_future(_pump_in(ends.stdin, handle)))
    if ends.resize is not None:
        side.append(asyncio.ensure_future(_pump_resize(ends.resize, handle)))
    waiter: asyncio.Future[int] = asyncio.ensure_future(handle.wait())
    drained: asyncio.Future[list[None]] = asyncio.ensure_future(asyncio.gather(*outs))
    try:
        await _first(waiter, ends.gone)
        if not waiter.done():
            if kill_on_gone:
                handle.kill()
            return None
        await _first(drained, ends.gone)
        code = waiter.result()
        if not drained.done():
            return code
        await ends.write_status(exit_status(code))
        return code
    finally:
        tasks: list[asyncio.Future[Any]] = [*outs, *side, waiter, drained]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*outs, *side, waiter, drained, return_exceptions=True)
        handle.close()


# ---- SPDY ----------------------------------------------------------------------------------

class _SpdySink:
    def __init__(self, stream: SpdyStream) -> None:
        self.stream = stream

    async def write(self, data: bytes) -> None:
        await self.stream.write(data)

    async def close(self) -> None:
        await self.stream.close_write()


def _spdy_resize(stream: SpdyStream) -> Callable[[], Awaitable[TerminalSize | None]]:
    decoder, pending = ResizeDecoder(), list[TerminalSize]()

    async def next_size() -> TerminalSize | None:
        while not pending:
            data = await stream.read()
            if not data:
                return None
            pending.extend(decoder.feed(data))
        return pending.pop(0)
    return next_size


async def wait_streams(session: SpdySession, expected: int,
                       timeout: float) -> dict[str, SpdyStream]:
    """Collect the client's streams by `streamtype` (the kubelet waits the same way).

    Raises:
        ProtocolError: an unknown or repeated stream type, or too slow a client.
    """
    streams: dict[str, SpdyStream] = {}
    deadline = asyncio.get_running_loop().time() + timeout
    closed = asyncio.ensure_future(session.closed.wait())
    try:
        while len(streams) < expected:
            get = asyncio.ensure_future(session.incoming.get())
            left = deadline - asyncio.get_running_loop().time()
            done, _ = await asyncio.wait({get, closed}, timeout=max(left, 0),
                                         return_when=asyncio.FIRST_COMPLETED)
            if get not in done:
                get.cancel()
                why = "closed the connection" if closed in done else "timed out"
                raise ProtocolError(f"client {why} before creating its streams "
                                    f"({len(streams)} of {expected})")
            stream = get.result()
            kind = stream.headers.get("streamtype", "")
            if kind not in STREAM_TYPES or kind in streams:
                raise ProtocolError(f"unexpected stream type {kind!r}")
            streams[kind] = stream
        return streams
    finally:
        closed.cancel()


async def serve_spdy_command(session: SpdySession, protocol: str, opts: StdioOptions,
                             start: StartProcess, kill_on_gone: bool,
                             creation_timeout: float) -> int | None:
    """Run one exec/attach over an upgraded SPDY session (the session's run() is a task)."""
    expected = 1 + opts.stdin + opts.stdout + opts.stderr
    if opts.tty and protocol in (V5, V4, V3):
        expected += 1
    streams = await wait_streams(session, expected, creation_timeout)
    error = streams["error"]
    json_status = protocol in (V5, V4)

    async def write_status(status: dict[str, Any]) -> None:
        payload = encode_status(status, json_status)
        if payload:
            await error.write(payload)
        await error.close_write()

    gone = asyncio.ensure_future(session.closed.wait())
    ends = Endpoints(
        stdin=streams["stdin"].read if "stdin" in streams else None,
        stdout=_SpdySink(streams["stdout"]) if "stdout" in streams else None,
        stderr=_SpdySink(streams["stderr"]) if "stderr" in streams else None,
        resize=_spdy_resize(streams["resize"]) if "resize" in streams else None,
        write_status=write_status, gone=gone)
    try:
        return await start_and_serve(start, ends, kill_on_gone)
    finally:
        gone.cancel()
        for stream in streams.values():
            await stream.close_write()


async def start_and_serve(start: StartProcess, ends: Endpoints, kill_on_gone: bool) -> int | None:
    try:
        handle = await start()
    except BackendError as e:
        await ends.write_status(internal_error_status(str(e)))
        raise
    return await serve_process(handle, ends, kill_on_gone)
