"""Exec and attach over WebSocket channels (the kubelet's wsstream protocols).

Each message starts with one channel byte (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize; v5
adds 255 = "close channel N"); the base64 variants send text: an ASCII digit, then base64.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from typing import Any

from crid.streaming.protocol.errors import ProtocolError
from crid.streaming.protocol.remotecommand import (
    V1,
    V4,
    V5,
    Endpoints,
    ResizeDecoder,
    StartProcess,
    StdioOptions,
    start_and_serve,
)
from crid.streaming.protocol.requests import TerminalSize
from crid.streaming.protocol.status import encode_status
from crid.streaming.protocol.websocket import WebSocket

# WebSocket subprotocol -> (binary, v5 close signal, JSON status)
WS_PROTOCOLS = {
    V5: (True, True, True),
    V4: (True, False, True),
    "v4.base64.channel.k8s.io": (False, False, True),
    V1: (True, False, False),
    "base64.channel.k8s.io": (False, False, False),
}
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255


# ---- WebSocket -----------------------------------------------------------------------------

class _WsSink:
    def __init__(self, ws: WebSocket, channel: int, binary: bool) -> None:
        self.ws, self.channel, self.binary = ws, channel, binary

    async def write(self, data: bytes) -> None:
        self.ws.send(*encode_ws_frame(self.channel, data, self.binary))
        await self.ws.drain()

    async def close(self) -> None:
        pass  # the kubelet does not signal the end of stdout/stderr either: the close does


def encode_ws_frame(channel: int, data: bytes, binary: bool) -> tuple[bytes, bool]:
    """(payload, is_text) for one channel message."""
    if binary:
        return bytes([channel]) + data, False
    return str(channel).encode() + base64.b64encode(data), True


def decode_ws_frame(payload: bytes, binary: bool) -> tuple[int, bytes]:
    """Channel and data of one message. Raises ProtocolError on an empty/bad message."""
    if not payload:
        raise ProtocolError("empty WebSocket message without a channel byte")
    if binary:
        return payload[0], payload[1:]
    if not payload[:1].isdigit():
        raise ProtocolError(f"base64 channel message starts with {payload[:1]!r}")
    try:
        return payload[0] - 0x30, base64.b64decode(payload[1:], validate=True)
    except binascii.Error as e:
        raise ProtocolError(f"bad base64 in channel message: {e}") from e


async def _ws_reader(ws: WebSocket, binary: bool, v5: bool, stdin: asyncio.Queue[bytes] | None,
                     resize: asyncio.Queue[TerminalSize | None] | None) -> None:
    """Demultiplex client messages. As the kubelet's wsstream: empty messages and messages on a
    known channel that is not open for input are dropped; an unknown channel is an error."""
    decoder = ResizeDecoder()
    try:
        while (msg := await ws.recv()) is not None:
            if not msg[1]:
                continue
            channel, data = decode_ws_frame(msg[1], binary)
            if channel == STDIN:
                if stdin is not None and data:
                    await stdin.put(data)
            elif channel == RESIZE:
                if resize is not None:
                    for size in decoder.feed(data):
                        await resize.put(size)
            elif channel == CLOSE and v5:
                if len(data) != 1:
                    raise ProtocolError(f"v5 close signal with payload {data!r}")
                if data[0] == STDIN and stdin is not None:
                    await stdin.put(b"")
            elif channel not in (STDOUT, STDERR, ERROR):
                raise ProtocolError(f"message on unknown channel {channel}")
    finally:
        # Wake the pumps with EOF; a full queue means the pump is behind and the session ends.
        with contextlib.suppress(asyncio.QueueFull):
            if stdin is not None:
                stdin.put_nowait(b"")
        with contextlib.suppress(asyncio.QueueFull):
            if resize is not None:
                resize.put_nowait(None)


async def serve_ws_command(ws: WebSocket, subprotocol: str, opts: StdioOptions,
                           start: StartProcess, kill_on_gone: bool) -> int | None:
    """Run one exec/attach over an accepted WebSocket with a channel subprotocol."""
    binary, v5, json_status = WS_PROTOCOLS[subprotocol]
    # Unbounded only by count: the reader blocks when a queue is full (backpressure).
    stdin_q: asyncio.Queue[bytes] | None = asyncio.Queue(16) if opts.stdin else None
    resize_q: asyncio.Queue[TerminalSize | None] | None = asyncio.Queue(16) if opts.tty else None
    reader = asyncio.ensure_future(_ws_reader(ws, binary, v5, stdin_q, resize_q))
    # As the kubelet: an empty message on the lowest writable channel says "connected".
    first = STDOUT if opts.stdout else STDERR if opts.stderr else ERROR
    ws.send(*encode_ws_frame(first, b"", binary))

    async def write_status(status: dict[str, Any]) -> None:
        payload = encode_status(status, json_status)
        if payload or json_status:
            ws.send(*encode_ws_frame(ERROR, payload, binary))
            await ws.drain()

    ends = Endpoints(
        stdin=stdin_q.get if stdin_q is not None else None,
        stdout=_WsSink(ws, STDOUT, binary) if opts.stdout else None,
        stderr=_WsSink(ws, STDERR, binary) if opts.stderr else None,
        resize=resize_q.get if resize_q is not None else None,
        write_status=write_status, gone=reader)
    try:
        return await start_and_serve(start, ends, kill_on_gone)
    finally:
        if reader.done() and not reader.cancelled() and reader.exception() is not None:
            raise ProtocolError(str(reader.exception())) from reader.exception()
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
