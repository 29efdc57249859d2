"""Pulls through real docker-registry instances: every image kind unpacks byte-exact."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from imagestore import (
    AuthenticationRequired,
    Credentials,
    ImageNotFound,
    RegistryOptions,
    RegistryUnavailable,
)
from tests.integration.imagestore.conftest import StoreFactory
from tests.rig import catalog
from tests.rig.images import BuiltImage, BuiltIndex, native_platform
from tests.rig.registry import Registry
from tests.rig.tree import scan_tree, tree_diff

IMAGES = {
    "busybox-oci-gzip": lambda: catalog.busybox_image("oci", "gzip"),
    "busybox-oci-zstd": lambda: catalog.busybox_image("oci", "zstd"),
    "busybox-oci-none": lambda: catalog.busybox_image("oci", "none"),
    "busybox-docker": lambda: catalog.busybox_image("docker", "gzip"),
    "kitchen-sink-oci": lambda: catalog.kitchen_sink_image("oci"),
    "kitchen-sink-docker": lambda: catalog.kitchen_sink_image("docker"),
    "multiarch-oci": lambda: catalog.multiarch_index("oci"),
    "multiarch-docker": lambda: catalog.multiarch_index("docker"),
}


def assert_byte_exact(store: object, image_id: str, built: BuiltImage) -> None:
    dirs = store.layer_dirs(image_id)  # type: ignore[attr-defined]
    expected = list(reversed(built.expected_layer_trees()))  # layer_dirs is top first
    assert len(dirs) == len(expected)
    for want, got in zip(expected, dirs, strict=True):
        assert tree_diff(want, scan_tree(got), check_mtime=True) == []


@pytest.mark.parametrize("kind", sorted(IMAGES))
def test_every_image_kind_unpacks_byte_exact(kind: str, registry: Registry, pushed,
                                             store_factory: StoreFactory) -> None:
    image = IMAGES[kind]()
    digest = pushed(registry, f"crt/{kind}", image, "v1")
    store = store_factory()
    record = store.pull(registry.ref(f"crt/{kind}", "v1"))
    built = image.for_platform(native_platform()) if isinstance(image, BuiltIndex) else image
    assert (record.id, record.repo_tags, record.repo_digests) == (
        built.image_id, (registry.ref(f"crt/{kind}", "v1"),),
        (f"{registry.netloc}/crt/{kind}@{digest}",))
    assert_byte_exact(store, record.id, built)
    assert store.config(record.id)["rootfs"]["diff_ids"] == list(built.diff_ids)


def test_pull_by_digest_and_lookups(registry: Registry, pushed,
                                    store_factory: StoreFactory) -> None:
    image = catalog.kitchen_sink_image()
    digest = pushed(registry, "crt/ks", image, "t1")
    store = store_factory()
    by_digest = store.pull(registry.ref("crt/ks", digest))
    assert (by_digest.repo_tags, by_digest.uid, by_digest.username) == ((), 1000, "")
    tagged = store.pull(registry.ref("crt/ks", "t1"))
    assert tagged.id == by_digest.id and tagged.repo_tags == (registry.ref("crt/ks", "t1"),)
    for name in (tagged.id, tagged.id[7:], tagged.id[:19], tagged.id[7:19],
                 registry.ref("crt/ks", "t1"), registry.ref("crt/ks", digest)):
        assert store.status(name) == tagged, name
    assert store.status(registry.ref("crt/ks", "other")) is None
    assert store.status("busybox") is None
    assert [r.id for r in store.list()] == [tagged.id]


def test_remove_by_one_tag_removes_all_tags_and_layers(registry: Registry, pushed,
                                                       store_factory: StoreFactory) -> None:
    image = catalog.busybox_image()
    pushed(registry, "crt/bb", image, "a")
    pushed(registry, "crt/bb", image, "b")
    store = store_factory()
    store.pull(registry.ref("crt/bb", "a"))
    record = store.pull(registry.ref("crt/bb", "b"))
    assert len(record.repo_tags) == 2
    layer_dir = store.layer_dirs(record.id)[0]
    store.remove(registry.ref("crt/bb", "a"))
    assert (store.list(), store.status(registry.ref("crt/bb", "b")), layer_dir.exists()) == (
        [], None, False)
    store.remove(registry.ref("crt/bb", "a"))  # absent: no error
    store.remove("sha256:" + "0" * 64)


def test_htpasswd_registry(htpasswd_registry: Registry, pushed, store_factory: StoreFactory,
                           tmp_path: Path) -> None:
    reg = htpasswd_registry
    pushed(reg, "crt/private", catalog.busybox_image())
    store = store_factory()
    with pytest.raises(AuthenticationRequired, match="requires credentials"):
        store.pull(reg.ref("crt/private"))
    with pytest.raises(AuthenticationRequired, match="rejected") as err:
        store.pull(reg.ref("crt/private"), Credentials(reg.username or "", "wrong-secret"))
    assert "wrong-secret" not in str(err.value)
    assert store.pull(reg.ref("crt/private"), Credentials(reg.username or "", reg.password or ""))
    auth = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"auths": {f"http://{reg.netloc}": {"auth": auth}}}))
    other = store_factory(root=tmp_path / "other", auth_file=auth_file)
    assert other.pull(reg.ref("crt/private")).repo_tags == (reg.ref("crt/private"),)


def test_token_registry(token_registry: Registry, pushed, store_factory: StoreFactory) -> None:
    reg = token_registry
    pushed(reg, "crt/tok", catalog.busybox_image())
    store = store_factory()
    with pytest.raises(AuthenticationRequired):
        store.pull(reg.ref("crt/tok"))
    with pytest.raises(AuthenticationRequired):
        store.pull(reg.ref("crt/tok"), Credentials(reg.username or "", "nope"))
    auth = base64.b64encode(f"{reg.username}:{reg.password}".encode()).decode()
    record = store.pull(reg.ref("crt/tok"), Credentials(auth=auth))
    assert record.repo_tags == (reg.ref("crt/tok"),)


def test_tls_registry_needs_its_ca(tls_registry: Registry, pushed, store_factory: StoreFactory,
                                   tmp_path: Path) -> None:
    reg = tls_registry
    pushed(reg, "crt/tls", catalog.busybox_image())
    with pytest.raises(RegistryUnavailable):
        store_factory().pull(reg.ref("crt/tls"))
    certs = tmp_path / "certs.d" / reg.netloc
    certs.mkdir(parents=True)
    assert reg.ca_path is not None
    (certs / "ca.crt").write_bytes(reg.ca_path.read_bytes())
    store = store_factory(root=tmp_path / "with-ca")
    assert store.pull(reg.ref("crt/tls")).repo_tags == (reg.ref("crt/tls"),)
    insecure = store_factory(root=tmp_path / "insecure", certs_dir=tmp_path / "none",
                             registries={reg.netloc: RegistryOptions(insecure=True)})
    assert insecure.pull(reg.ref("crt/tls"))


def test_mirror_tried_in_order_then_upstream(registry: Registry, mirror_registry: Registry,
                                             pushed, store_factory: StoreFactory) -> None:
    image = catalog.busybox_image()
    pushed(registry, "crt/mirrored", image)
    dead_upstream = "127.0.0.1:9"  # discard port: nothing listens, the mirror must serve
    store = store_factory(registries={dead_upstream: RegistryOptions(
        mirrors=("http://127.0.0.1:9", mirror_registry.url))})
    record = store.pull(f"{dead_upstream}/crt/mirrored:latest")
    assert record.id == image.image_id
    assert_byte_exact(store, record.id, image)
    with pytest.raises(ImageNotFound):
        store.pull(f"{dead_upstream}/crt/absent:latest")


def test_unreachable_registry(store_factory: StoreFactory) -> None:
    with pytest.raises(RegistryUnavailable, match="cannot reach 127.0.0.1:9"):
        store_factory().pull("127.0.0.1:9/crt/x:latest")
