"""The registry client (OCI distribution API): endpoints, ping, auth, manifests and blobs.

For a registry, the endpoints are its configured mirrors in order, then the upstream itself. A
mirror that fails in any way is skipped; the upstream's error is the one reported. Plain HTTP is
used only for mirrors written `http://...`, or as a fallback when TLS fails on a host configured
`insecure` or on a loopback address (as Docker allows).
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TypeVar

import urllib3
from urllib3.exceptions import HTTPError

from imagestore.digest import Digest
from imagestore.errors import (
    AccessDenied,
    AuthenticationRequired,
    ImageNotFound,
    ImageStoreError,
    InvalidImage,
    RegistryUnavailable,
    VerificationFailed,
)
from imagestore.options import ImageStoreOptions
from imagestore.reference import DOCKER_HUB, Reference
from imagestore.registry.auth import Authorizer, Challenge, parse_challenge
from imagestore.registry.credentials import Credentials, load_auth_file
from imagestore.registry.transport import Request, TLSFailure, Transport

log = logging.getLogger(__name__)
T = TypeVar("T")
CHUNK = 256 << 10
_HUB_API = "registry-1.docker.io"
PING_TTL = 300.0  # seconds a ping result (scheme, challenge) is trusted: registries change


@dataclass(frozen=True)
class Endpoint:
    """One place to fetch a repository from: a mirror or the upstream."""

    url: str  # scheme://host[:port], no trailing slash
    host: str  # host[:port]: certs_dir and auth.json key
    insecure: bool  # skip TLS verification
    http_fallback: bool  # try plain HTTP when TLS fails
    mirror: bool


@dataclass(frozen=True)
class Fetched:
    """A manifest as served: raw bytes, Content-Type, and the sha256 of the bytes."""

    body: bytes
    media_type: str
    digest: Digest


@dataclass
class _Live:
    """An endpoint after its /v2/ ping: the base URL that answered and its challenge."""

    base: str
    challenge: Challenge | None
    expires: float


class RegistryClient:
    """Thread-safe client shared by all pulls; connections and tokens are reused."""

    def __init__(self, options: ImageStoreOptions, transport: Transport | None = None) -> None:
        self._opts = options
        self._transport = transport or Transport(options)
        self._auth = Authorizer(self._transport)
        self._live: dict[Endpoint, _Live] = {}
        self._lock = threading.Lock()

    def endpoints(self, domain: str) -> list[Endpoint]:
        """Mirrors of `domain` in configured order, then the upstream."""
        reg = self._opts.registry(domain)
        out = [_mirror_endpoint(m, self._opts) for m in reg.mirrors]
        host = _HUB_API if domain == DOCKER_HUB else domain
        fallback = reg.insecure or is_loopback(host)
        out.append(Endpoint(f"https://{host}", domain, reg.insecure, fallback, False))
        return out

    def repository(self, ref: Reference, credentials: Credentials | None = None,
                   push: bool = False) -> Repository:
        """A handle on `ref`'s repository for manifest and blob requests; with `push`, on the
        upstream only (a mirror is a read-only cache) and with the push scope."""
        return Repository(self, ref, credentials, push)

    def live(self, ep: Endpoint) -> _Live:
        """Ping `ep` once (GET /v2/), choosing the scheme and recording its challenge.

        Raises:
            RegistryUnavailable: unreachable, TLS failed without fallback, not a v2 registry.
        """
        with self._lock:
            live = self._live.get(ep)
        if live and live.expires > time.monotonic():
            return live
        bases = [ep.url]
        if ep.http_fallback and ep.url.startswith("https://"):
            bases.append("http://" + ep.url[len("https://"):])
        for i, base in enumerate(bases):
            try:
                resp = self._transport.send(Request("GET", f"{base}/v2/", {}), ep.insecure)
            except TLSFailure:
                if i + 1 < len(bases):
                    continue
                raise
            resp.drain_conn()
            resp.release_conn()
            if resp.status not in (200, 401):
                raise RegistryUnavailable(f"{ep.host} is not an OCI registry: "
                                          f"GET /v2/ answered HTTP {resp.status}")
            live = _Live(base, parse_challenge(resp.headers.get("WWW-Authenticate")),
                         time.monotonic() + PING_TTL)
            with self._lock:
                self._live[ep] = live
            return live
        raise AssertionError("unreachable")

    @property
    def transport(self) -> Transport:
        return self._transport

    @property
    def authorizer(self) -> Authorizer:
        return self._auth

    @property
    def options(self) -> ImageStoreOptions:
        return self._opts


class Repository:
    """Requests for one repository, over its endpoints in order."""

    def __init__(self, client: RegistryClient, ref: Reference,
                 credentials: Credentials | None, push: bool = False) -> None:
        self._c = client
        self._ref = ref
        self._creds = credentials if credentials and not credentials.is_empty() else None
        self._endpoints = client.endpoints(ref.domain)
        if push:
            self._endpoints = self._endpoints[-1:]
        self._scope = f"repository:{ref.path}:pull" + (",push" if push else "")

    @property
    def reference(self) -> Reference:
        return self._ref

    @property
    def upstream(self) -> Endpoint:
        return self._endpoints[-1]

    def get_manifest(self, reference: str, accept: list[str]) -> Fetched:
        """Fetch the manifest or index `reference` (tag or digest), size-limited.

        Raises:
            ImageNotFound, AuthenticationRequired, AccessDenied, RegistryUnavailable,
            InvalidImage (too large), VerificationFailed (digest mismatch).
        """
        return self._first(lambda ep: self._manifest_from(ep, reference, accept))

    def fetch_blob(self, digest: Digest, size: int, limit: int, what: str) -> bytes:
        """Fetch a small blob (config) whole, checking size and digest.

        Raises:
            InvalidImage: `size` exceeds `limit`. VerificationFailed, and the request errors.
        """
        if size > limit:
            raise InvalidImage(f"{what} {digest} of {self._ref.name} is {size} bytes, "
                               f"over the {limit}-byte limit")
        return b"".join(self.stream_blob(digest, size))

    def stream_blob(self, digest: Digest, size: int) -> Generator[bytes, None, None]:
        """Yield the blob's bytes; the digest and size are checked when the last chunk is read.

        A broken transfer resumes with a Range request. Consumers must read to the end (or
        close the generator) and must not expose what they built unless it ends normally.

        Raises:
            VerificationFailed: wrong size, wrong digest, or truncated after the retries.
        """
        ep, resp = self._first(lambda ep: (ep, self._open_blob(ep, digest, size, 0)))
        hasher = digest.hasher()
        offset = 0
        failures = 0
        complete = False
        try:
            while True:
                try:
                    for chunk in resp.stream(CHUNK, decode_content=False):
                        if offset + len(chunk) > size:
                            raise VerificationFailed(
                                f"blob {digest} of {self._ref.name} is longer than {size} bytes")
                        offset += len(chunk)
                        hasher.update(chunk)
                        yield chunk
                    if offset >= size:
                        complete = True
                        break
                except (HTTPError, OSError) as e:
                    log.debug("blob %s broken at %d: %s", digest, offset, type(e).__name__)
                done(resp, False)
                failures += 1
                if failures > self._c.options.retries:
                    raise VerificationFailed(
                        f"blob {digest} of {self._ref.name} truncated: {offset} of {size} bytes "
                        f"after {failures} attempts")
                self._c.transport.backoff(failures - 1, None, f"broken blob {digest}")
                resp = self._open_blob(ep, digest, size, offset)
        finally:
            done(resp, complete)
        if hasher.hexdigest() != digest.hex:
            raise VerificationFailed(f"blob {digest} of {self._ref.name} has digest "
                                     f"{digest.algorithm}:{hasher.hexdigest()}")

    def _first(self, fn: Callable[[Endpoint], T]) -> T:
        """`fn` on each endpoint in order until one succeeds. The upstream's error is raised,
        unless it is unreachable and a mirror gave a definite answer (e.g. not found)."""
        mirror_error: ImageStoreError | None = None
        for ep in self._endpoints:
            try:
                return fn(ep)
            except RegistryUnavailable:
                if not ep.mirror and mirror_error is not None:
                    raise mirror_error from None
                if not ep.mirror:
                    raise
            except ImageStoreError as e:
                if not ep.mirror:
                    raise
                mirror_error = mirror_error or e
                log.debug("mirror %s failed for %s: %s", ep.host, self._ref.name, e)
        raise AssertionError("the upstream is always the last endpoint")

    def _manifest_from(self, ep: Endpoint, reference: str, accept: list[str]) -> Fetched:
        limit = self._c.options.max_manifest_bytes
        resp = self._get(ep, f"manifests/{reference}", {"Accept": ", ".join(accept)},
                         f"manifest {self._ref.name}:{reference}")
        body = b""
        try:
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > limit:
                raise InvalidImage(f"manifest {self._ref.name}:{reference} is {length} bytes, "
                                   f"over the {limit}-byte limit")
            body = _read_limited(resp, limit, f"manifest {self._ref.name}:{reference}")
        finally:
            done(resp, bool(body))
        digest = Digest.of(body)
        if reference.startswith("sha") and ":" in reference and str(digest) != reference:
            raise VerificationFailed(f"manifest {self._ref.name}@{reference} from {ep.host} "
                                     f"has digest {digest}")
        media_type = (resp.headers.get("Content-Type") or "").split(";")[0].strip()
        return Fetched(body, media_type, digest)

    def _open_blob(self, ep: Endpoint, digest: Digest, size: int,
                   offset: int) -> urllib3.BaseHTTPResponse:
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        resp = self._get(ep, f"blobs/{digest}", headers, f"blob {digest} of {self._ref.name}")
        try:
            _check_blob_response(resp, digest, size, offset)
            if offset and resp.status == 200:  # Range ignored: skip what we already have
                _skip(resp, offset)
        except BaseException:
            done(resp, False)
            raise
        return resp

    def _get(self, ep: Endpoint, path: str, headers: dict[str, str],
             what: str) -> urllib3.BaseHTTPResponse:
        resp = self.send(ep, "GET", path, headers, what)
        raise_for_status(resp, ep, what, self.credentials_for(ep) is not None)
        return resp

    def send(self, ep: Endpoint, method: str, target: str, headers: dict[str, str], what: str,
             body: bytes | None = None, extra_scope: str = "") -> urllib3.BaseHTTPResponse:
        """One authorised request: `target` is a path under `/v2/<repo>/` or an absolute URL
        (an upload's Location). A 401 is answered once with a fresh token; the status is the
        caller's to classify. `extra_scope` adds a scope (a cross-repository mount's source).

        Raises:
            AuthenticationRequired: still 401 and nothing more to offer.
            RegistryUnavailable: the transport's errors.
        """
        live = self._c.live(ep)
        url = target if "://" in target else f"{live.base}/v2/{self._ref.path}/{target}"
        creds = self.credentials_for(ep)
        scope = f"{self._scope} {extra_scope}".strip()
        auth = self._c.authorizer.header(live.challenge, scope, creds, ep.insecure)
        req = Request(method, url, _with_auth(headers, auth), body)
        resp = self._c.transport.send(req, ep.insecure)
        if resp.status == 401:
            challenge = parse_challenge(resp.headers.get("WWW-Authenticate")) or live.challenge
            discard(resp)
            auth = self._c.authorizer.header(challenge, scope, creds, ep.insecure,
                                             refresh=True)
            if auth is None:
                raise AuthenticationRequired(f"{ep.host} requires credentials for {what}")
            req = Request(method, url, _with_auth(headers, auth), body)
            resp = self._c.transport.send(req, ep.insecure)
        return resp

    def credentials_for(self, ep: Endpoint) -> Credentials | None:
        """A request's own credentials are for the upstream only: a mirror (maybe someone
        else's) gets the ones auth.json holds for the mirror's host, if any."""
        return (self._creds if not ep.mirror else None) or load_auth_file(
            self._c.options.auth_file, ep.host)


def _with_auth(headers: dict[str, str], auth: str | None) -> dict[str, str]:
    return {**headers, "Authorization": auth} if auth else dict(headers)


def raise_for_status(resp: urllib3.BaseHTTPResponse, ep: Endpoint, what: str,
                     had_creds: bool, ok: tuple[int, ...] = (200, 206)) -> None:
    """Nothing for an `ok` status; else the answer is discarded and classified.

    Raises:
        AuthenticationRequired (401), AccessDenied (403), ImageNotFound (404),
        RegistryUnavailable (anything else).
    """
    status = resp.status
    if status in ok:
        return
    discard(resp)
    if status == 401:
        raise AuthenticationRequired(f"{ep.host} rejected the credentials for {what}"
                                     if had_creds else f"{ep.host} requires credentials for {what}")
    if status == 403:
        raise AccessDenied(f"{ep.host} denied access to {what}")
    if status == 404:
        raise ImageNotFound(f"{what} not found on {ep.host}")
    raise RegistryUnavailable(f"{ep.host} answered HTTP {status} for {what}")


def _check_blob_response(resp: urllib3.BaseHTTPResponse, digest: Digest, size: int,
                         offset: int) -> None:
    length = resp.headers.get("Content-Length")
    if resp.status == 206:
        first = resp.headers.get("Content-Range", "").removeprefix("bytes ").split("-")[0]
        if first != str(offset):
            raise VerificationFailed(f"blob {digest}: resumed at the wrong offset ({first!r})")
        expected = size - offset
    else:
        expected = size
    if length is not None and (not length.isdigit() or int(length) != expected):
        raise VerificationFailed(f"blob {digest}: registry announced {length:.20} bytes, "
                                 f"the manifest says {expected}")


def _skip(resp: urllib3.BaseHTTPResponse, count: int) -> None:
    while count:
        chunk = resp.read(min(count, CHUNK), decode_content=False)
        if not chunk:
            raise VerificationFailed("blob ended while skipping to the resume offset")
        count -= len(chunk)


def _read_limited(resp: urllib3.BaseHTTPResponse, limit: int, what: str) -> bytes:
    try:
        body = resp.read(limit + 1, decode_content=True)
    except (HTTPError, OSError) as e:
        raise RegistryUnavailable(f"reading {what}: {type(e).__name__}") from e
    if len(body) > limit:
        raise InvalidImage(f"{what} is over the {limit}-byte limit")
    return body


def discard(resp: urllib3.BaseHTTPResponse) -> None:
    """Drop an error answer: read a little of it (keeps small bodies' connections reusable)."""
    try:
        resp.read(1 << 16)
        complete = resp.read(1) == b""
    except (HTTPError, OSError):
        complete = False
    done(resp, complete)


def done(resp: urllib3.BaseHTTPResponse, complete: bool) -> None:
    """Give the connection back to the pool; close it first unless its body was read to the
    end (unread bytes would be taken for the next answer)."""
    if not complete:
        resp.close()
    resp.release_conn()


def _mirror_endpoint(url: str, opts: ImageStoreOptions) -> Endpoint:
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "https", url
    host = rest.split("/", 1)[0]
    insecure = opts.registry(host).insecure
    fallback = scheme == "https" and (insecure or is_loopback(host))
    return Endpoint(f"{scheme}://{host}", host, insecure, fallback, True)


def is_loopback(host: str) -> bool:
    """Whether `host[:port]` names a loopback address (localhost, 127/8, ::1)."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 or "]" in host else host
    name = name.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


__all__ = ["Endpoint", "Fetched", "RegistryClient", "Repository", "discard", "done", "is_loopback",
           "raise_for_status"]
