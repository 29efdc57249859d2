"""Options of the streaming server and the duration parser for `idle_timeout`."""

from __future__ import annotations

from dataclasses import dataclass

from crid.config import parse_duration as config_duration
from crid.streaming.protocol.errors import RequestError


def parse_duration(text: str | float | int) -> float:
    """Seconds in a Go-style duration (`"4h"`, `"1h30m"`, `"500ms"`) or a plain number.

    Raises:
        RequestError: not a duration, or negative.
    """
    if isinstance(text, int | float):
        if text < 0:
            raise RequestError(f"duration {text!r} is negative")
        return float(text)
    try:
        return config_duration(text)
    except ValueError as e:
        raise RequestError(str(e)) from e


@dataclass(frozen=True)
class StreamingOptions:
    """Configuration of the streaming server (`[streaming]` in crid.toml).

    `port` 0 picks a free port. `idle_timeout` closes a session that moved no bytes for that
    long. With `tls_cert` and `tls_key` the server speaks HTTPS and hands out https URLs.
    """

    address: str = "127.0.0.1"
    port: int = 0
    idle_timeout: str = "4h"
    tls_cert: str | None = None
    tls_key: str | None = None
    token_ttl: str = "1m"
    stream_creation_timeout: str = "30s"
    handshake_timeout: str = "30s"
    max_tokens: int = 1000

    def __post_init__(self) -> None:
        for name in ("idle_timeout", "token_ttl", "stream_creation_timeout", "handshake_timeout"):
            parse_duration(getattr(self, name))
        if not 0 <= self.port <= 65535:
            raise RequestError(f"streaming port {self.port} out of range")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise RequestError("streaming tls_cert and tls_key must be set together")

    @property
    def idle_seconds(self) -> float:
        return parse_duration(self.idle_timeout)

    @property
    def token_seconds(self) -> float:
        return parse_duration(self.token_ttl)

    @property
    def stream_creation_seconds(self) -> float:
        return parse_duration(self.stream_creation_timeout)

    @property
    def handshake_seconds(self) -> float:
        return parse_duration(self.handshake_timeout)
