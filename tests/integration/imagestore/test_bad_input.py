"""Every bad input gives its named error, leaves the store exactly as before, writes nothing
outside it. Misbehaviours come from a registry of the test's own; hostile tars go through a
real docker-registry."""

from __future__ import annotations

import io
import json
import socket
import tarfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from imagestore import (
    AccessDenied,
    AuthenticationRequired,
    ImageNotFound,
    ImageStore,
    InvalidImage,
    RegistryUnavailable,
    VerificationFailed,
)
from tests.integration.imagestore.conftest import StoreFactory, snapshot
from tests.integration.imagestore.fake_registry import FakeRegistry
from tests.rig import catalog
from tests.rig import layers as L
from tests.rig.images import BuiltImage, ImageConfig, ImageSpec, build_image
from tests.rig.registry import Registry

IMAGE = catalog.kitchen_sink_image()
LAYER = IMAGE.layers[1].digest  # the zstd one
Fault = Callable[[BaseHTTPRequestHandler, bytes], None]


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    reg = FakeRegistry()
    reg.add("crt/img", IMAGE, "v1")
    with reg.running():
        yield reg


@pytest.fixture
def store(store_factory: StoreFactory, fake: FakeRegistry) -> ImageStore:
    """A store that already holds the busybox image (so 'unchanged' is not trivially empty)."""
    s = store_factory()
    bb = catalog.busybox_image()
    fake.add("crt/bb", bb)
    s.pull(f"{fake.netloc}/crt/bb:latest")
    return s


def _manifest_path(fake: FakeRegistry) -> str:
    return "/v2/crt/img/manifests/v1"


def _status(code: int, **headers: str) -> Fault:
    return lambda h, body: h.reply(code, b'{"errors":[]}', **headers)  # type: ignore[attr-defined]


def _body(data: bytes, media_type: str = "application/vnd.oci.image.manifest.v1+json") -> Fault:
    return lambda h, body: h.serve(data, media_type)  # type: ignore[attr-defined]


def _truncated(h: BaseHTTPRequestHandler, body: bytes) -> None:
    h.send_response(200)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body[: len(body) // 2])  # then the connection closes


def _huge_length(h: BaseHTTPRequestHandler, body: bytes) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
    h.send_header("Content-Length", str(5 << 30))
    h.end_headers()
    h.wfile.write(body)


def _wrong_bytes(h: BaseHTTPRequestHandler, body: bytes) -> None:
    h.serve(bytes(b ^ 1 for b in body[:64]) + body[64:])  # type: ignore[attr-defined]


def _manifest_with(**change: object) -> bytes:
    doc = json.loads(IMAGE.manifest.data)
    doc.update(change)
    return json.dumps(doc).encode()


BLOB = f"/v2/crt/img/blobs/{LAYER}"
CONFIG = f"/v2/crt/img/blobs/{IMAGE.config.digest}"
MANIFEST = "/v2/crt/img/manifests/v1"
CASES: dict[str, tuple[str, Fault, type[Exception], str]] = {
    "wrong layer digest": (BLOB, _wrong_bytes, VerificationFailed, "has digest"),
    "wrong config digest": (CONFIG, _wrong_bytes, VerificationFailed, "has digest"),
    "truncated blob": (BLOB, _truncated, VerificationFailed, "truncated"),
    "manifest not JSON": (MANIFEST, _body(b"<html>nope</html>"), InvalidImage, "not JSON"),
    "unknown media type": (MANIFEST, _body(_manifest_with(mediaType="application/x-evil")),
                           InvalidImage, "unsupported manifest media type"),
    "schema 1": (MANIFEST, _body(b'{"schemaVersion":1}'), InvalidImage, "schema 1"),
    "5 GiB manifest": (MANIFEST, _huge_length, InvalidImage, "over the"),
    "5 GiB blob": (BLOB, _huge_length, VerificationFailed, "announced 5368709120 bytes"),
    "5 GiB config": (MANIFEST, _body(_manifest_with(config={
        **json.loads(IMAGE.manifest.data)["config"], "size": 5 << 30})), InvalidImage,
        "over the 8388608-byte limit"),
    "no layers": (MANIFEST, _body(_manifest_with(layers=[])), InvalidImage, "has 0 layers"),
    "index without this platform": (MANIFEST, _body(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": IMAGE.digest, "size": IMAGE.manifest.size,
                       "platform": {"os": "linux", "architecture": "s390x"}}]}).encode(),
        "application/vnd.oci.image.index.v1+json"), InvalidImage, "no image for platform"),
    "401": (MANIFEST, _status(401), AuthenticationRequired, "requires credentials"),
    "403": (MANIFEST, _status(403), AccessDenied, "denied"),
    "404 manifest": (MANIFEST, _status(404), ImageNotFound, "not found"),
    "404 blob": (BLOB, _status(404), ImageNotFound, "not found"),
    "429": (BLOB, _status(429, Retry_After="0"), RegistryUnavailable, "HTTP 429"),
    "500": (MANIFEST, _status(500), RegistryUnavailable, "HTTP 500"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_registry_answers(case: str, fake: FakeRegistry, store: ImageStore,
                              tmp_path: Path) -> None:
    path, fault, error, message = CASES[case]
    fake.faults[path] = fault
    before, outside = snapshot(tmp_path / "images"), _outside(tmp_path)
    with pytest.raises(error, match=message):
        store.pull(f"{fake.netloc}/crt/img:v1")
    assert snapshot(tmp_path / "images") == before
    assert _outside(tmp_path) == outside
    assert [r.repo_tags for r in store.list()] == [(f"{fake.netloc}/crt/bb:latest",)]


def test_retries_honour_retry_after_then_succeed(fake: FakeRegistry, store: ImageStore) -> None:
    answers = iter([_status(503), _status(429, Retry_After="0")])
    fake.faults[BLOB] = lambda h, body: next(answers, lambda h2, b2: h2.serve(b2))(h, body)
    assert store.pull(f"{fake.netloc}/crt/img:v1").id == IMAGE.image_id
    assert fake.hits[BLOB] == 3


def test_broken_transfer_resumes_with_range(fake: FakeRegistry, store: ImageStore) -> None:
    calls = []

    def once_truncated(h: BaseHTTPRequestHandler, body: bytes) -> None:
        calls.append(h.headers.get("Range"))
        if len(calls) == 1:
            _truncated(h, body)
        else:
            h.serve(body)  # type: ignore[attr-defined]
    fake.faults[BLOB] = once_truncated
    assert store.pull(f"{fake.netloc}/crt/img:v1").id == IMAGE.image_id
    size = len(fake.blobs[LAYER])
    assert calls == [None, f"bytes={size // 2}-"]


def test_pull_by_digest_checks_the_manifest_digest(fake: FakeRegistry, store: ImageStore,
                                                   tmp_path: Path) -> None:
    other = catalog.busybox_image()
    fake.manifests[f"crt/img/{IMAGE.digest}"] = (other.manifest.media_type, other.manifest.data)
    before = snapshot(tmp_path / "images")
    with pytest.raises(VerificationFailed, match="has digest"):
        store.pull(f"{fake.netloc}/crt/img@{IMAGE.digest}")
    assert snapshot(tmp_path / "images") == before


def test_diff_id_mismatch(fake: FakeRegistry, store: ImageStore, tmp_path: Path) -> None:
    config = json.loads(IMAGE.config.data)
    config["rootfs"]["diff_ids"][2] = "sha256:" + "0" * 64
    bad = build_bad_config_image(config)
    fake.add("crt/bad", bad)
    before = snapshot(tmp_path / "images")
    with pytest.raises(VerificationFailed, match="diff_id"):
        store.pull(f"{fake.netloc}/crt/bad:latest")
    assert snapshot(tmp_path / "images") == before


def build_bad_config_image(config: dict) -> BuiltImage:
    from tests.rig.images import Blob
    blob = Blob.of(IMAGE.config.media_type, json.dumps(config).encode())
    manifest = json.loads(IMAGE.manifest.data)
    manifest["config"] = blob.descriptor()
    return BuiltImage(IMAGE.spec, Blob.of(IMAGE.manifest.media_type,
                                          json.dumps(manifest).encode()), blob, IMAGE.layers)


def _hostile_layer(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _ti(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", data: bytes = b"pwned"
        ) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        return info, data
    return info, None


HOSTILE = {
    "dotdot": ([_ti("../../etc/passwd")], "contains '..'"),
    "absolute symlink then a file through it": (
        [_ti("etc", tarfile.SYMTYPE, "/etc"), _ti("etc/passwd")], "which is a symlink"),
    "hard link to /etc/shadow": ([_ti("shadow", tarfile.LNKTYPE, "/etc/shadow")],
                                 "absolute path"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tars_through_a_real_registry(case: str, registry: Registry, pushed,
                                              store_factory: StoreFactory,
                                              tmp_path: Path) -> None:
    members, message = HOSTILE[case]
    image = _image_with_raw_layer(_hostile_layer(*members))
    pushed(registry, "crt/hostile", image)
    store = store_factory()
    before = snapshot(tmp_path / "images")
    passwd, shadow = Path("/etc/passwd").read_bytes(), Path("/etc/shadow").stat()
    with pytest.raises(InvalidImage, match=message):
        store.pull(registry.ref("crt/hostile"))
    assert snapshot(tmp_path / "images") == before
    assert (Path("/etc/passwd").read_bytes(), Path("/etc/shadow").stat()) == (passwd, shadow)


def test_gzip_bomb_through_a_real_registry(registry: Registry, pushed,
                                           store_factory: StoreFactory, tmp_path: Path) -> None:
    image = _image_with_raw_layer(_hostile_layer(_ti("zeros", data=bytes(64 << 20))), "gzip")
    pushed(registry, "crt/bomb", image)
    store = store_factory(max_ratio=100, ratio_floor=1 << 20)
    before = snapshot(tmp_path / "images")
    with pytest.raises(InvalidImage, match="decompression bomb"):
        store.pull(registry.ref("crt/bomb"))
    assert snapshot(tmp_path / "images") == before


def _image_with_raw_layer(raw_tar: bytes, compression: str = "none") -> BuiltImage:
    """An image whose single layer is `raw_tar` verbatim (the rig builder makes safe tars)."""
    from tests.rig.images import Blob
    from tests.rig.layers import compress, sha256_digest
    base = build_image(ImageSpec((L.LayerSpec((L.file("x", b"x"),), compression),),
                                 ImageConfig(cmd=("/bin/sh",))))
    data = compress(raw_tar, compression)
    layer = L.BuiltLayer(**{**base.layers[0].__dict__, "data": data, "digest": sha256_digest(data),
                            "size": len(data), "diff_id": sha256_digest(raw_tar)})
    config = json.loads(base.config.data)
    config["rootfs"]["diff_ids"] = [layer.diff_id]
    cblob = Blob.of(base.config.media_type, json.dumps(config).encode())
    manifest = json.loads(base.manifest.data)
    manifest["config"] = cblob.descriptor()
    manifest["layers"][0].update(digest=layer.digest, size=layer.size)
    return BuiltImage(base.spec, Blob.of(base.manifest.media_type, json.dumps(manifest).encode()),
                      cblob, (layer,))


def _outside(tmp_path: Path) -> dict[str, tuple[int, int]]:
    """Everything in the test's tmp dir except the store: nothing may appear there."""
    return {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("images")}


def test_connection_refused_is_unavailable(store_factory: StoreFactory) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(RegistryUnavailable, match="cannot reach"):
        store_factory().pull(f"127.0.0.1:{port}/crt/x:latest")
