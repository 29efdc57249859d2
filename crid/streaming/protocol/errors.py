"""Named errors of the streaming server and client."""

from __future__ import annotations


class StreamingError(Exception):
    """Base of every error raised by crid.streaming.protocol."""


class RequestError(StreamingError):
    """An Exec/Attach/PortForward request is invalid (maps to gRPC InvalidArgument)."""


class ProtocolError(StreamingError):
    """The peer broke the wire protocol (HTTP, SPDY, WebSocket or remotecommand framing)."""


class BackendError(StreamingError):
    """The backend could not start the process, attach, or connect the forwarded port."""


class SessionClosed(StreamingError):
    """The session or stream was closed or reset while in use."""
