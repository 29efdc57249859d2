"""crid's streaming server: Exec, Attach and PortForward over SPDY/3.1 and WebSocket."""

from crid.streaming.protocol.backend import ProcessHandle, StreamingBackend
from crid.streaming.protocol.errors import (
    BackendError,
    ProtocolError,
    RequestError,
    SessionClosed,
    StreamingError,
)
from crid.streaming.protocol.options import StreamingOptions, parse_duration
from crid.streaming.protocol.requests import (
    AttachRequest,
    ExecRequest,
    PortForwardRequest,
    TerminalSize,
)
from crid.streaming.protocol.server import StreamingServer

__all__ = [
    "AttachRequest", "BackendError", "ExecRequest", "PortForwardRequest", "ProcessHandle",
    "ProtocolError", "RequestError", "SessionClosed", "StreamingBackend", "StreamingError",
    "StreamingOptions", "StreamingServer", "TerminalSize", "parse_duration",
]
