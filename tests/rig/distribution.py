"""A minimal OCI distribution API client for the rig: push built images, fetch them back.

Speaks `/v2/` with basic or bearer auth (answering the registry's `WWW-Authenticate` challenge),
monolithic (POST + PUT) and chunked (POST + PATCH… + PUT) blob uploads, manifest PUT by tag or
digest, and GETs of manifests and blobs. It is the rig's tool for setting up registries, not the
image store's client: it trusts its inputs and keeps no state beyond cached tokens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin

import urllib3

from tests.rig.registry import Registry

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
MANIFEST_ACCEPT = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


class DistributionError(Exception):
    """A registry answered a rig request with an unexpected status."""

    def __init__(self, what: str, status: int, body: bytes) -> None:
        super().__init__(f"{what}: HTTP {status}: {body[:300]!r}")
        self.status = status


@dataclass(frozen=True)
class Fetched:
    """A GET answer: body, its sha256 digest, and the headers that matter."""

    data: bytes
    digest: str
    media_type: str
    docker_digest: str | None


class DistributionClient:
    """Client for one `Registry`; credentials default to the registry's own."""

    def __init__(
        self,
        registry: Registry,
        username: str | None = None,
        password: str | None = None,
        anonymous: bool = False,
    ) -> None:
        self.registry = registry
        self.username = None if anonymous else (username or registry.username)
        self.password = None if anonymous else (password or registry.password)
        ca = str(registry.ca_path) if registry.ca_path else None
        self.http = urllib3.PoolManager(
            ca_certs=ca, cert_reqs="CERT_REQUIRED" if ca else "CERT_NONE",
            retries=False, timeout=urllib3.Timeout(connect=5, read=120),
        )
        self._tokens: dict[str, str] = {}

    # -- uploads ---------------------------------------------------------------------------

    def blob_exists(self, repo: str, digest: str) -> bool:
        resp = self._request("HEAD", f"/v2/{repo}/blobs/{digest}", _scope(repo, "pull"))
        return resp.status == 200

    def push_blob(self, repo: str, data: bytes, digest: str, chunk_size: int | None = None) -> None:
        """Upload `data` as blob `digest`: one PUT, or PATCHes of `chunk_size` then a PUT."""
        scope = _scope(repo, "pull,push")
        resp = self._request("POST", f"/v2/{repo}/blobs/uploads/", scope)
        _expect(resp, 202, f"starting upload of {digest} to {repo}")
        location = self._location(resp)
        if chunk_size:
            for start in range(0, len(data), chunk_size):
                chunk = data[start:start + chunk_size]
                resp = self._request("PATCH", location, scope, body=chunk, headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{start}-{start + len(chunk) - 1}",
                })
                _expect(resp, 202, f"uploading chunk at {start} of {digest}")
                location = self._location(resp)
            data = b""
        resp = self._request("PUT", _with_query(location, digest=digest), scope, body=data,
                             headers={"Content-Type": "application/octet-stream"})
        _expect(resp, 201, f"completing upload of {digest} to {repo}")

    def push_manifest(self, repo: str, reference: str, media_type: str, data: bytes) -> str:
        """PUT a manifest by tag or digest; returns the digest the registry reports."""
        resp = self._request("PUT", f"/v2/{repo}/manifests/{reference}",
                             _scope(repo, "pull,push"), body=data,
                             headers={"Content-Type": media_type})
        _expect(resp, 201, f"putting manifest {repo}:{reference}")
        fallback = "sha256:" + hashlib.sha256(data).hexdigest()
        return resp.headers.get("Docker-Content-Digest", fallback)

    # -- downloads -------------------------------------------------------------------------

    def get_manifest(self, repo: str, reference: str) -> Fetched:
        resp = self._request("GET", f"/v2/{repo}/manifests/{reference}", _scope(repo, "pull"),
                             headers={"Accept": MANIFEST_ACCEPT})
        _expect(resp, 200, f"getting manifest {repo}:{reference}")
        return _fetched(resp)

    def get_blob(self, repo: str, digest: str) -> Fetched:
        resp = self._request("GET", f"/v2/{repo}/blobs/{digest}", _scope(repo, "pull"))
        _expect(resp, 200, f"getting blob {digest} from {repo}")
        return _fetched(resp)

    def ping(self) -> int:
        """Status of an authenticated `GET /v2/`."""
        return self._request("GET", "/v2/", "").status

    # -- plumbing --------------------------------------------------------------------------

    def _request(
        self, method: str, path: str, scope: str, body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        url = path if path.startswith("http") else self.registry.url + path
        headers = dict(headers or {})
        for attempt in range(2):
            auth = self._auth_header(scope)
            if auth:
                headers["Authorization"] = auth
            resp = self.http.request(method, url, body=body, headers=headers,
                                     redirect=True, preload_content=True)
            if resp.status != 401 or attempt == 1:
                return resp
            self._answer_challenge(resp.headers.get("WWW-Authenticate", ""), scope)
        raise AssertionError("unreachable")

    def _auth_header(self, scope: str) -> str | None:
        if scope in self._tokens:
            return f"Bearer {self._tokens[scope]}"
        if self.registry.auth == "basic" and self.username:
            return _basic(self.username, self.password or "")
        return None

    def _answer_challenge(self, challenge: str, scope: str) -> None:
        if not challenge.lower().startswith("bearer "):
            return  # basic: credentials (if any) were already sent
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        query = {"service": params.get("service", "")}
        if scope or params.get("scope"):
            query["scope"] = params.get("scope") or scope
        headers = {}
        if self.username:
            headers["Authorization"] = _basic(self.username, self.password or "")
        resp = self.http.request("GET", params["realm"] + "?" + urlencode(query), headers=headers)
        _expect(resp, 200, f"getting a token from {params['realm']}")
        answer = json.loads(resp.data)
        self._tokens[scope] = answer.get("token") or answer["access_token"]

    def _location(self, resp: urllib3.BaseHTTPResponse) -> str:
        return urljoin(self.registry.url + "/", resp.headers["Location"])


def _scope(repo: str, actions: str) -> str:
    return f"repository:{repo}:{actions}"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _with_query(url: str, **params: str) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _expect(resp: urllib3.BaseHTTPResponse, status: int, what: str) -> None:
    if resp.status != status:
        raise DistributionError(what, resp.status, resp.data or b"")


def _fetched(resp: urllib3.BaseHTTPResponse) -> Fetched:
    data = resp.data
    return Fetched(
        data=data,
        digest="sha256:" + hashlib.sha256(data).hexdigest(),
        media_type=resp.headers.get("Content-Type", ""),
        docker_digest=resp.headers.get("Docker-Content-Digest"),
    )
