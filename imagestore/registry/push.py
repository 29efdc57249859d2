"""The push side of the distribution API: blob existence, cross-repository mounts, uploads
(chunked PATCHes closed by a PUT), manifest PUT, and the registry's catalog.

Pushes go to the upstream only (a mirror is someone's read-only cache) with the repository's
`pull,push` scope. Upload sessions live at whatever Location the registry gives, relative or
absolute, and may move with every PATCH (distribution-spec "Pushing a blob in chunks").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import urlencode, urljoin

import urllib3

from imagestore.digest import Digest
from imagestore.errors import ImageStoreError, RegistryUnavailable, VerificationFailed
from imagestore.registry.auth import Challenge
from imagestore.registry.client import (
    Endpoint,
    RegistryClient,
    Repository,
    discard,
    done,
    raise_for_status,
)
from imagestore.registry.credentials import load_auth_file
from imagestore.registry.transport import Request

log = logging.getLogger(__name__)
UPLOAD_CHUNK = 8 << 20  # bytes a PATCH carries: large enough to keep requests few
_CATALOG_PAGE = 100
_MAX_CATALOG_BODY = 4 << 20

Progress = Callable[[int], None]  # bytes sent so far


class CatalogUnavailable(ImageStoreError):
    """The registry offers no catalog (Docker Hub, or a registry with it disabled)."""


class BlobPusher:
    """Blob and manifest uploads to one repository's upstream registry."""

    def __init__(self, client: RegistryClient, repo: Repository) -> None:
        self._client = client
        self._repo = repo
        self._ep = repo.upstream
        self._name = repo.reference.name

    def has_blob(self, digest: Digest) -> bool:
        """Whether the repository already holds `digest` (HEAD answers 200)."""
        what = f"blob {digest} of {self._name}"
        resp = self._repo.send(self._ep, "HEAD", f"blobs/{digest}", {}, what)
        if resp.status == 404:
            discard(resp)
            return False
        self._check(resp, what, (200,))
        done(resp, True)
        return True

    def mount(self, digest: Digest, source_path: str) -> bool:
        """Ask the registry to link `digest` from repository `source_path` (same registry).

        False when it declines (it then opened an upload session, which is cancelled).
        """
        what = f"mount of {digest} from {source_path} into {self._name}"
        query = urlencode({"mount": str(digest), "from": source_path})
        resp = self._repo.send(self._ep, "POST", f"blobs/uploads/?{query}",
                               {"Content-Length": "0"}, what,
                               extra_scope=f"repository:{source_path}:pull")
        if resp.status == 201:
            done(resp, _drained(resp))
            return True
        self._check(resp, what, (202,))
        location = self._location(resp)
        done(resp, _drained(resp))
        self._cancel(location)
        return False

    def upload(self, digest: Digest, size: int, chunks: Iterable[bytes],
               progress: Progress | None = None) -> None:
        """Upload the blob whose bytes `chunks` yields, checking `digest` and `size` locally
        before the registry is asked to commit it; a failed upload is cancelled.

        Raises:
            VerificationFailed: the bytes are not `digest` / `size`. The request errors.
        """
        what = f"upload of {digest} to {self._name}"
        resp = self._repo.send(self._ep, "POST", "blobs/uploads/", {"Content-Length": "0"},
                               what)
        self._check(resp, what, (202,))
        location = self._location(resp)
        done(resp, _drained(resp))
        try:
            location = self._patch_all(location, digest, size, chunks, progress, what)
            sep = "&" if "?" in location else "?"
            resp = self._repo.send(self._ep, "PUT", f"{location}{sep}digest={digest}",
                                   {"Content-Length": "0"}, what)
            self._check(resp, what, (201, 204))
            done(resp, _drained(resp))
        except BaseException:
            self._cancel(location)
            raise

    def put_manifest(self, reference: str, body: bytes, media_type: str) -> Digest:
        """PUT a manifest under a tag or digest; returns its digest (checked against the one
        the registry reports, if it reports one).

        Raises:
            VerificationFailed: the registry computed another digest. The request errors.
        """
        digest = Digest.of(body)
        what = f"manifest {self._name}:{reference}"
        resp = self._repo.send(self._ep, "PUT", f"manifests/{reference}",
                               {"Content-Type": media_type}, what, body)
        self._check(resp, what, (201, 200))
        reported = resp.headers.get("Docker-Content-Digest")
        done(resp, _drained(resp))
        if reported and reported != str(digest):
            raise VerificationFailed(f"{what}: the registry stored {reported:.80}, "
                                     f"crid sent {digest}")
        return digest

    def _patch_all(self, location: str, digest: Digest, size: int, chunks: Iterable[bytes],
                   progress: Progress | None, what: str) -> str:
        hasher = digest.hasher()
        sent = 0
        for piece in _rechunk(chunks, UPLOAD_CHUNK):
            hasher.update(piece)
            end = sent + len(piece) - 1
            resp = self._repo.send(self._ep, "PATCH", location, {
                "Content-Type": "application/octet-stream", "Content-Length": str(len(piece)),
                "Content-Range": f"{sent}-{end}"}, what, piece)
            self._check(resp, what, (202, 204))
            location = self._location(resp, location)
            done(resp, _drained(resp))
            sent += len(piece)
            if progress:
                progress(sent)
        if sent != size or hasher.hexdigest() != digest.hex:
            raise VerificationFailed(f"{what}: the content is {sent} bytes with digest "
                                     f"{digest.algorithm}:{hasher.hexdigest()}, not {size} bytes "
                                     f"of {digest}")
        return location

    def _cancel(self, location: str) -> None:
        """Best effort: a registry expires abandoned sessions itself anyway."""
        try:
            resp = self._repo.send(self._ep, "DELETE", location, {}, f"upload to {self._name}")
            discard(resp)
        except ImageStoreError as e:
            log.debug("cancelling an upload to %s: %s", self._name, e)

    def _location(self, resp: urllib3.BaseHTTPResponse, previous: str | None = None) -> str:
        location = resp.headers.get("Location")
        if not location:
            if previous:
                return previous
            discard(resp)
            raise RegistryUnavailable(f"{self._ep.host} opened an upload without a Location")
        base = self._client.live(self._ep).base
        return urljoin(f"{base}/v2/{self._repo.reference.path}/", location)

    def _check(self, resp: urllib3.BaseHTTPResponse, what: str, ok: tuple[int, ...]) -> None:
        raise_for_status(resp, self._ep, what, self._repo.credentials_for(self._ep) is not None,
                         ok)


def catalog(client: RegistryClient, domain: str, limit: int = 1000) -> list[str]:
    """Repository names the registry `domain` lists (`GET /v2/_catalog`, paginated by its
    Link headers), through its mirrors first as pulls go; at most `limit` names.

    Raises:
        CatalogUnavailable: no endpoint offers a catalog. RegistryUnavailable.
    """
    last: ImageStoreError | None = None
    for ep in client.endpoints(domain):
        try:
            return _catalog_from(client, ep, limit)
        except ImageStoreError as e:
            last = e
            log.debug("catalog of %s via %s: %s", domain, ep.host, e)
    assert last is not None
    raise last


def _catalog_from(client: RegistryClient, ep: Endpoint, limit: int) -> list[str]:
    live = client.live(ep)
    url = f"{live.base}/v2/_catalog?n={_CATALOG_PAGE}"
    names: list[str] = []
    while url and len(names) < limit:
        resp = _catalog_page(client, ep, url, live.challenge)
        try:
            body = resp.read(_MAX_CATALOG_BODY + 1, decode_content=True)
            link = resp.headers.get("Link", "")
        finally:
            done(resp, True)
        names.extend(_repositories(body, ep.host))
        url = _next_link(link, live.base)
    return names[:limit]


def _catalog_page(client: RegistryClient, ep: Endpoint, url: str,
                  challenge: Challenge | None) -> urllib3.BaseHTTPResponse:
    creds = load_auth_file(client.options.auth_file, ep.host)
    auth = client.authorizer.header(challenge, "registry:catalog:*", creds, ep.insecure)
    resp = client.transport.send(Request("GET", url, {"Authorization": auth} if auth else {}),
                                 ep.insecure)
    if resp.status in (401, 403, 404, 405):
        discard(resp)
        raise CatalogUnavailable(f"{ep.host} offers no catalog (GET /v2/_catalog answered "
                                 f"HTTP {resp.status})")
    raise_for_status(resp, ep, "the catalog", creds is not None)
    return resp


def _repositories(body: bytes, host: str) -> list[str]:
    if len(body) > _MAX_CATALOG_BODY:
        raise RegistryUnavailable(f"{host}'s catalog page is over {_MAX_CATALOG_BODY} bytes")
    try:
        repos = json.loads(body)["repositories"]
    except (ValueError, KeyError, TypeError) as e:
        raise RegistryUnavailable(f"{host} sent a catalog that is not JSON: {e}") from e
    if not isinstance(repos, list) or not all(isinstance(r, str) for r in repos):
        raise RegistryUnavailable(f"{host} sent a catalog whose repositories are not names")
    return repos


def _next_link(link: str, base: str) -> str:
    """The `rel="next"` target of a Link header, resolved against the registry; '' if none."""
    for part in link.split(","):
        target, _, params = part.strip().partition(";")
        if 'rel="next"' in params.replace(" ", "") and target.startswith("<"):
            return urljoin(base + "/", target.strip("<>"))
    return ""


def _rechunk(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Pieces of exactly `size` bytes (the last may be shorter), whatever the input's sizes."""
    buf = bytearray()
    for chunk in chunks:
        buf += chunk
        while len(buf) >= size:
            yield bytes(buf[:size])
            del buf[:size]
    if buf:
        yield bytes(buf)


def _drained(resp: urllib3.BaseHTTPResponse) -> bool:
    """Read what little body an answer has; whether it was read to the end."""
    try:
        resp.read(1 << 16)
        return resp.read(1) == b""
    except (urllib3.exceptions.HTTPError, OSError):
        return False
