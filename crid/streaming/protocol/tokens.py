"""Single-use, short-lived tokens naming a pending streaming request."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crid.streaming.protocol.errors import RequestError


@dataclass(frozen=True)
class _Entry:
    kind: str
    request: Any
    expires: float


class TokenCache:
    """Maps random tokens to requests; thread-safe (gRPC threads put, the server consumes).

    A token is valid for `ttl` seconds and for one `consume` only. At most `capacity` tokens
    are pending; more raise RequestError (the kubelet's cache refuses the same way).
    """

    def __init__(self, ttl: float, capacity: int = 1000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl, self._capacity, self._clock = ttl, capacity, clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def put(self, kind: str, request: Any) -> str:
        """Store `request` of `kind` ("exec", "attach", "portforward"); return its token."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._expire(self._clock())
            if len(self._entries) >= self._capacity:
                raise RequestError(f"too many pending streaming requests ({self._capacity})")
            self._entries[token] = _Entry(kind, request, self._clock() + self._ttl)
        return token

    def consume(self, kind: str, token: str) -> Any | None:
        """Remove and return the request under `token` if it is of `kind` and unexpired."""
        with self._lock:
            entry = self._entries.pop(token, None)
        if entry is None or entry.kind != kind or entry.expires <= self._clock():
            return None
        return entry.request

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _expire(self, now: float) -> None:
        for token in [t for t, e in self._entries.items() if e.expires <= now]:
            del self._entries[token]
