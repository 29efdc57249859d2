"""HTTP transport: one urllib3 pool manager per TLS configuration, retries, redirects.

TLS for a host comes from `<certs_dir>/<host[:port]>/`: every `*.crt` is a CA, `client.cert`
with `client.key` a client certificate. Insecure hosts skip verification. Retries cover
connection failures, 5xx and 429 (honouring `Retry-After`), with doubling back-off.
"""

from __future__ import annotations

import email.utils
import logging
import ssl
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError, InsecureRequestWarning, SSLError
from urllib3.util.ssl_ import create_urllib3_context

from imagestore.errors import RegistryUnavailable
from imagestore.options import ImageStoreOptions

log = logging.getLogger(__name__)

_REDIRECTS = {301, 302, 303, 307, 308}
_MAX_REDIRECTS = 5


class TLSFailure(RegistryUnavailable):
    """TLS could not be established (also what a plain-HTTP server answers to a handshake)."""


@dataclass(frozen=True)
class Request:
    """One HTTP request; `headers` may hold Authorization (never logged)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None = None


class Transport:
    """Sends requests with retries and redirects; thread-safe, connections reused."""

    def __init__(self, options: ImageStoreOptions,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._opts = options
        self._sleep = sleep
        self._pools: dict[tuple[str, bool], urllib3.PoolManager] = {}
        self._lock = threading.Lock()
        self._timeout = urllib3.Timeout(connect=options.connect_timeout,
                                        read=options.read_timeout)
        if any(r.insecure for r in options.registries.values()):
            # The operator chose unverified TLS for these hosts; a warning per request would
            # only flood the log. (Filters are process-wide: this is the daemon's only client.)
            warnings.filterwarnings("ignore", category=InsecureRequestWarning)

    def send(self, req: Request, insecure: bool = False) -> urllib3.BaseHTTPResponse:
        """Send `req`, following redirects (Authorization dropped on another host).

        The response body is not preloaded: callers stream or read it, then `release_conn`.
        5xx and 429 are retried; the last such answer is returned for the caller to classify.

        Raises:
            RegistryUnavailable: the host cannot be reached after the retries.
            TLSFailure: the TLS handshake failed.
        """
        origin = urlsplit(req.url).netloc
        for _ in range(_MAX_REDIRECTS + 1):
            resp = self._send_retrying(req, insecure)
            location = resp.headers.get("Location")
            if resp.status not in _REDIRECTS or not location:
                return resp
            resp.drain_conn()
            resp.release_conn()
            url = urljoin(req.url, location)
            headers = dict(req.headers)
            if urlsplit(url).netloc != origin:
                headers.pop("Authorization", None)
                insecure = self._opts.registry(urlsplit(url).netloc).insecure
            method = "GET" if resp.status == 303 else req.method
            req = Request(method, url, headers, None if method == "GET" else req.body)
        raise RegistryUnavailable(f"too many redirects fetching {_safe(req.url)}")

    def _send_retrying(self, req: Request, insecure: bool) -> urllib3.BaseHTTPResponse:
        for attempt in range(self._opts.retries + 1):
            last = attempt == self._opts.retries
            try:
                resp = self._pool(req.url, insecure).request(
                    req.method, req.url, headers=req.headers, body=req.body, redirect=False,
                    retries=False, preload_content=False, timeout=self._timeout)
            except SSLError as e:
                raise TLSFailure(f"TLS with {urlsplit(req.url).netloc} failed: {e}") from e
            except (HTTPError, OSError) as e:
                if last:
                    raise RegistryUnavailable(
                        f"cannot reach {urlsplit(req.url).netloc}: {_reason(e)}") from e
                self.backoff(attempt, None, f"{type(e).__name__} on {_safe(req.url)}")
                continue
            if (resp.status == 429 or resp.status >= 500) and not last:
                retry_after = resp.headers.get("Retry-After")
                resp.drain_conn()
                resp.release_conn()
                self.backoff(attempt, retry_after, f"HTTP {resp.status} on {_safe(req.url)}")
                continue
            return resp
        raise AssertionError("unreachable")

    def backoff(self, attempt: int, retry_after: str | None, why: str) -> None:
        """Sleep before retry `attempt` (0-based): Retry-After if given, else doubling delays."""
        delay = self._opts.backoff_seconds * (2 ** attempt)
        server = parse_retry_after(retry_after)
        if server is not None:
            delay = min(server, self._opts.max_retry_after)
        log.debug("retrying in %.2fs after %s", delay, why)
        self._sleep(delay)

    def _pool(self, url: str, insecure: bool) -> urllib3.PoolManager:
        parts = urlsplit(url)
        key = (parts.netloc if parts.scheme == "https" else "", insecure)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = urllib3.PoolManager(num_pools=16, maxsize=32,
                                           **self._tls_kwargs(parts.netloc, insecure))
                self._pools[key] = pool
            return pool

    def _tls_kwargs(self, netloc: str, insecure: bool) -> dict[str, Any]:
        if insecure:
            return {"cert_reqs": "CERT_NONE"}
        kwargs: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED"}
        if not netloc:
            return kwargs
        # One context per host, built here: left to urllib3, every new connection (one per
        # layer of a parallel pull) builds its own and loads the system's CA store again
        # (~35 ms of CPU under the GIL each).
        kwargs["ssl_context"] = self._context(netloc)
        return kwargs

    def _context(self, netloc: str) -> ssl.SSLContext:
        """Raises RegistryUnavailable: a CA or client certificate file that will not load."""
        ctx = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
        folder = Path(self._opts.certs_dir) / netloc
        cas = sorted(folder.glob("*.crt")) if folder.is_dir() else []
        try:
            if cas:
                ctx.load_verify_locations(cadata="\n".join(p.read_text() for p in cas))
            else:
                ctx.load_default_certs()
            if (folder / "client.cert").is_file() and (folder / "client.key").is_file():
                ctx.load_cert_chain(str(folder / "client.cert"), str(folder / "client.key"))
        except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
            raise RegistryUnavailable(f"TLS files for {netloc} in {folder}: {e}") from None
        return ctx


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _safe(url: str) -> str:
    """The URL without its query (pre-signed storage URLs carry credentials there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in the system's words ("Connection refused", "timed out"):
    urllib3's own exceptions wrap the OSError that says it, and name the URL, which may not
    be shown as it is."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        if isinstance(seen, TimeoutError) or "timed out" in str(seen).lower():
            return "timed out"
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__
