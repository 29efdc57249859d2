"""A small registry of the tests' own, for misbehaviours a real registry cannot produce.

It serves images from memory (`add`), counts requests per path (`hits`), and lets a test
replace the answer to any path with a fault (`faults[path] = fn(handler, body) `).
"""

from __future__ import annotations

import contextlib
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.rig.images import BuiltImage, BuiltIndex

Fault = Callable[[BaseHTTPRequestHandler, bytes], None]


class FakeRegistry:
    """Serve `add`ed images on 127.0.0.1; `netloc` is the registry part of references."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.manifests: dict[str, tuple[str, bytes]] = {}
        self.blobs: dict[str, bytes] = {}
        self.faults: dict[str, Fault] = {}
        self.hits: Counter[str] = Counter()
        self.basic_auth: str | None = None  # "Basic ..." required on every /v2/ path when set
        self.seen_headers: list[tuple[str, dict[str, str]]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def add(self, repo: str, image: BuiltImage | BuiltIndex, tag: str | None = "latest") -> None:
        children = image.images if isinstance(image, BuiltIndex) else (image,)
        for child in children:
            for blob in child.blobs():
                self.blobs[blob.digest] = blob.data
            self.manifests[f"{repo}/{child.digest}"] = (child.manifest.media_type,
                                                        child.manifest.data)
        top = (image.manifest.media_type, image.manifest.data)
        self.manifests[f"{repo}/{image.digest}"] = top
        if tag:
            self.manifests[f"{repo}/{tag}"] = top

    @contextlib.contextmanager
    def running(self) -> Iterator[FakeRegistry]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join()


def _handler(reg: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            reg.hits[self.path] += 1
            reg.seen_headers.append((self.path, dict(self.headers.items())))
            if reg.basic_auth and self.path.startswith("/v2/") \
                    and self.headers.get("Authorization") != reg.basic_auth:
                self.reply(401, b"{}", WWW_Authenticate='Basic realm="crt-img"')
                return
            fault = reg.faults.get(self.path)
            body, media_type = self._lookup()
            if fault is not None:
                fault(self, body or b"")
                return
            if body is None:
                self.reply(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
                return
            self.serve(body, media_type)

        def _lookup(self) -> tuple[bytes | None, str]:
            if self.path == "/v2/":
                return b"{}", "application/json"
            repo, kind, ref = _split(self.path)
            if kind == "manifests" and f"{repo}/{ref}" in reg.manifests:
                media_type, body = reg.manifests[f"{repo}/{ref}"]
                return body, media_type
            if kind == "blobs" and ref in reg.blobs:
                return reg.blobs[ref], "application/octet-stream"
            return None, ""

        def serve(self, body: bytes, media_type: str = "application/octet-stream") -> None:
            start = 0
            rng = self.headers.get("Range", "")
            if rng.startswith("bytes="):
                start = int(rng[6:].split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            self.wfile.write(body[start:])

        def reply(self, status: int, body: bytes = b"", **headers: str) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key.replace("_", "-"), value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


def _split(path: str) -> tuple[str, str, str]:
    """`/v2/<repo>/<manifests|blobs>/<ref>` → (repo, kind, ref)."""
    rest = path[len("/v2/"):]
    for kind in ("manifests", "blobs"):
        marker = f"/{kind}/"
        if marker in rest:
            repo, _, ref = rest.rpartition(marker)
            return repo, kind, ref
    return "", "", ""
