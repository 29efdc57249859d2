"""Push a multi-layer image to real docker-registry instances and fetch every byte back."""

from __future__ import annotations

import json

import pytest

from tests.rig import catalog
from tests.rig.distribution import DistributionClient, DistributionError
from tests.rig.images import BuiltImage, BuiltIndex, push
from tests.rig.registry import Registry


def _check_roundtrip(registry: Registry, image: BuiltImage, chunk_size: int | None) -> None:
    client = DistributionClient(registry)
    digest = push(client, "crt-rig/roundtrip", image, tag="v1", chunk_size=chunk_size)
    assert digest == image.digest

    for reference in ("v1", image.digest):
        manifest = client.get_manifest("crt-rig/roundtrip", reference)
        assert manifest.digest == image.digest
        assert manifest.docker_digest == image.digest
        assert manifest.media_type == image.manifest.media_type
    body = json.loads(manifest.data)
    descriptors = [body["config"], *body["layers"]]
    assert [d["digest"] for d in descriptors] == [b.digest for b in image.blobs()]
    for descriptor in descriptors:
        blob = client.get_blob("crt-rig/roundtrip", descriptor["digest"])
        assert blob.digest == descriptor["digest"]
        assert len(blob.data) == descriptor["size"]


@pytest.mark.parametrize("chunk_size", [None, 64 * 1024])
def test_roundtrip_plain(registry: Registry, kitchen_sink_image: BuiltImage,
                         chunk_size: int | None) -> None:
    _check_roundtrip(registry, kitchen_sink_image, chunk_size)


def test_roundtrip_tls(tls_registry: Registry, kitchen_sink_image: BuiltImage) -> None:
    assert tls_registry.url.startswith("https://") and tls_registry.ca_path is not None
    _check_roundtrip(tls_registry, kitchen_sink_image, None)


def test_roundtrip_htpasswd(htpasswd_registry: Registry, kitchen_sink_image: BuiltImage) -> None:
    _check_roundtrip(htpasswd_registry, kitchen_sink_image, 100_000)
    anonymous = DistributionClient(htpasswd_registry, anonymous=True)
    with pytest.raises(DistributionError) as err:
        anonymous.get_manifest("crt-rig/roundtrip", "v1")
    assert err.value.status == 401
    wrong = DistributionClient(htpasswd_registry, password="wrong")
    assert wrong.ping() == 401


def test_roundtrip_docker_format(registry: Registry) -> None:
    _check_roundtrip(registry, catalog.busybox_image(fmt="docker"), None)


def test_roundtrip_token(token_registry: Registry, kitchen_sink_image: BuiltImage) -> None:
    assert token_registry.auth == "token" and token_registry.token_realm
    _check_roundtrip(token_registry, kitchen_sink_image, None)
    anonymous = DistributionClient(token_registry, anonymous=True)
    with pytest.raises(DistributionError) as err:
        anonymous.get_manifest("crt-rig/roundtrip", "v1")
    assert err.value.status == 401


def test_mirror_serves_upstream_content(registry: Registry, mirror_registry: Registry,
                                        busybox_image: BuiltImage) -> None:
    push(DistributionClient(registry), "crt-rig/mirrored", busybox_image, tag="v1")
    mirror = DistributionClient(mirror_registry)
    assert mirror.get_manifest("crt-rig/mirrored", "v1").digest == busybox_image.digest
    for blob in busybox_image.blobs():
        assert mirror.get_blob("crt-rig/mirrored", blob.digest).digest == blob.digest


def test_multiarch_index_roundtrip(registry: Registry, multiarch_index: BuiltIndex) -> None:
    client = DistributionClient(registry)
    assert push(client, "crt-rig/multi", multiarch_index, tag="v1") == multiarch_index.digest
    index = json.loads(client.get_manifest("crt-rig/multi", "v1").data)
    platforms = [m["platform"] for m in index["manifests"]]
    assert platforms == [{"architecture": "amd64", "os": "linux"},
                         {"architecture": "arm64", "os": "linux"},
                         {"architecture": "arm", "os": "linux", "variant": "v7"}]
    for entry, image in zip(index["manifests"], multiarch_index.images, strict=True):
        assert client.get_manifest("crt-rig/multi", entry["digest"]).digest == image.digest
