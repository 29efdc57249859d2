"""Manifest parsing, media types, schema 1 refusal and platform selection."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagestore import manifest as mf
from imagestore.errors import InvalidImage

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64


def _manifest(media_type: str = mf.OCI_MANIFEST, layer_type: str =
              "application/vnd.oci.image.layer.v1.tar+gzip") -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": media_type,
        "config": {"mediaType": mf.OCI_CONFIG, "digest": D1, "size": 10},
        "layers": [{"mediaType": layer_type, "digest": D2, "size": 20}],
    }).encode()


def _index(*platforms: dict[str, str]) -> mf.Index:
    entries = [{"mediaType": mf.OCI_MANIFEST, "digest": f"sha256:{i:064x}", "size": 1,
                "platform": p} for i, p in enumerate(platforms)]
    parsed = mf.parse(json.dumps({"schemaVersion": 2, "manifests": entries}).encode(),
                      mf.OCI_INDEX)
    assert isinstance(parsed, mf.Index)
    return parsed


def test_oci_manifest() -> None:
    m = mf.parse(_manifest())
    assert isinstance(m, mf.Manifest)
    assert (str(m.config.digest), [str(la.digest) for la in m.layers]) == (D1, [D2])


def test_media_type_from_content_type_when_body_has_none() -> None:
    body = json.loads(_manifest())
    del body["mediaType"]
    m = mf.parse(json.dumps(body).encode(), mf.DOCKER_MANIFEST)
    assert isinstance(m, mf.Manifest) and m.media_type == mf.DOCKER_MANIFEST


@pytest.mark.parametrize("body, content_type, message", [
    (b"<html>", "", "not JSON"),
    (b"[1]", "", "not a JSON object"),
    (b'{"schemaVersion": 1, "fsLayers": []}', "", "schema 1"),
    (b"{}", mf.DOCKER_SCHEMA1[1], "schema 1"),
    (_manifest("application/x-unknown"), "", "unsupported manifest media type"),
    (_manifest(layer_type="application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"), "",
     "unsupported layer media type"),
    (_manifest().replace(D2.encode(), b"sha256:abc"), "", "invalid digest"),
    (_manifest().replace(b'"size": 20', b'"size": -1'), "", "non-negative size"),
])
def test_refused(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(InvalidImage, match=message):
        mf.parse(body, content_type)


def test_config_diff_ids_must_match_layers() -> None:
    cfg = json.dumps({"rootfs": {"type": "layers", "diff_ids": [D1, D2]},
                      "config": {"User": "1000:1000"}}).encode()
    assert mf.diff_ids(mf.parse_config(cfg, 2))[1].hex == "2" * 64
    with pytest.raises(InvalidImage, match="2 diff_ids for 3 layers"):
        mf.parse_config(cfg, 3)
    assert mf.user_of(json.loads(cfg)) == (1000, "")
    assert mf.user_of({"config": {"User": "www:www"}}) == (None, "www")
    assert mf.user_of({}) == (None, "")
    assert mf.user_of({"config": [1]}) == mf.user_of({"config": {"User": 7}}) == (None, "")


def test_platform_exact_and_compatible_variants() -> None:
    idx = _index({"os": "linux", "architecture": "amd64"},
                 {"os": "linux", "architecture": "arm64", "variant": "v8"},
                 {"os": "linux", "architecture": "arm", "variant": "v6"},
                 {"os": "linux", "architecture": "arm", "variant": "v7"},
                 {"os": "unknown", "architecture": "unknown"})
    pick = {str(p): str(mf.select_platform(idx, p).digest)[-1] for p in [
        mf.Platform("linux", "amd64"), mf.Platform("linux", "arm64"),
        mf.Platform("linux", "arm64", "v8"), mf.Platform("linux", "arm", "v7"),
        mf.Platform("linux", "arm", "v6"), mf.Platform("linux", "arm", "v8")]}
    assert pick == {"linux/amd64": "0", "linux/arm64": "1", "linux/arm64/v8": "1",
                    "linux/arm/v7": "3", "linux/arm/v6": "2", "linux/arm/v8": "3"}
    with pytest.raises(InvalidImage, match="no image for platform linux/s390x"):
        mf.select_platform(idx, mf.Platform("linux", "s390x"))


def test_host_platform_is_linux() -> None:
    assert mf.host_platform().os == "linux"


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)
_KEYS = st.sampled_from(["schemaVersion", "mediaType", "config", "layers", "manifests",
                         "digest", "size", "platform", "annotations"])


@given(st.dictionaries(_KEYS, _JSON | st.just(2) | st.just(D1) | st.just(mf.OCI_MANIFEST),
                       max_size=6))
def test_arbitrary_documents_parse_or_are_invalid(doc: dict) -> None:
    for body in (json.dumps(doc).encode(), json.dumps({"schemaVersion": 2, **doc}).encode()):
        try:
            mf.parse(body)
        except InvalidImage:
            pass
        try:
            mf.parse_config(body, 1)
        except InvalidImage:
            pass
        mf.user_of(doc)
