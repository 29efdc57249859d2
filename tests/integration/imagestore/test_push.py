"""Pushes to real docker-registry instances: copies between registries, cross-repository mounts,
chunked uploads, token auth with the push scope, and the catalog behind search."""

from __future__ import annotations

import pytest

from imagestore import (
    AuthenticationRequired,
    CatalogUnavailable,
    Credentials,
    ImageNotFound,
    InvalidReference,
    PushEvent,
)
from imagestore.digest import Digest
from imagestore.registry.push import UPLOAD_CHUNK
from tests.integration.imagestore.conftest import StoreFactory
from tests.integration.imagestore.fake_registry import FakeRegistry
from tests.rig import catalog
from tests.rig.distribution import DistributionClient
from tests.rig.fixtures import RegistryFactory
from tests.rig.images import BuiltImage
from tests.rig.registry import Registry, RegistryOptions


def _statuses(events: list[PushEvent]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in events:
        steps = out.setdefault(e.id, [])
        if not steps or steps[-1] != e.status:
            steps.append(e.status)
    return out


def _assert_served(reg: Registry, repo: str, tag: str, image: BuiltImage) -> None:
    client = DistributionClient(reg)
    got = client.get_manifest(repo, tag)
    assert (got.digest, got.data) == (image.digest, image.manifest.data)
    for blob in image.blobs():
        assert client.get_blob(repo, blob.digest).data == blob.data


def test_push_to_another_registry_copies_every_blob(
        registry: Registry, registry_factory: RegistryFactory, pushed,
        store_factory: StoreFactory, busybox_image: BuiltImage) -> None:
    other = registry_factory(RegistryOptions())
    pushed(registry, "crt/src", busybox_image, "v1")
    store = store_factory()
    record = store.pull(registry.ref("crt/src", "v1"))
    events: list[PushEvent] = []
    target = other.ref("crt/copy", "v2")

    result = store.push(record.id, target, events=events.append)

    assert (str(result.target), result.digest) == (target, Digest.parse(busybox_image.digest))
    _assert_served(other, "crt/copy", "v2", busybox_image)
    layers = [layer.digest.split(":")[1][:12] for layer in busybox_image.layers]
    assert _statuses(events) == {
        short: ["Preparing", "Pushing", "Pushed"] for short in layers}
    last = [e for e in events if e.status == "Pushed"][-1]
    assert last.current == last.total == busybox_image.layers[-1].size
    assert store.status(record.id).repo_digests[-1] == f"{other.netloc}/crt/copy@{result.digest}"
    # A fresh store pulls the pushed copy back as the same image.
    assert store_factory(root=store.root.parent / "again").pull(target).id == record.id


def test_push_within_a_registry_mounts_and_then_finds_layers(
        registry: Registry, pushed, store_factory: StoreFactory,
        busybox_image: BuiltImage) -> None:
    pushed(registry, "crt/base", busybox_image, "v1")
    store = store_factory()
    record = store.pull(registry.ref("crt/base", "v1"))
    events: list[PushEvent] = []
    store.push(record.id, registry.ref("crt/mounted", "v1"), events=events.append)
    assert {s[-1] for s in _statuses(events).values()} == {"Mounted from crt/base"}
    _assert_served(registry, "crt/mounted", "v1", busybox_image)

    again: list[PushEvent] = []
    store.push(record.id, registry.ref("crt/mounted", "v1"), events=again.append)
    assert {s[-1] for s in _statuses(again).values()} == {"Layer already exists"}
    home: list[PushEvent] = []
    result = store.push(registry.ref("crt/base", "v1"), events=home.append)  # to its own tag
    assert {s[-1] for s in _statuses(home).values()} == {"Layer already exists"}
    assert str(result.target) == registry.ref("crt/base", "v1")


def test_large_layers_go_up_in_chunks(registry: Registry, registry_factory: RegistryFactory,
                                      pushed, store_factory: StoreFactory) -> None:
    image = catalog.big_image(total_bytes=5 * UPLOAD_CHUNK, layer_count=1, seed=7)
    assert image.layers[0].size > 2 * UPLOAD_CHUNK  # random half: gzip cannot shrink it away
    other = registry_factory(RegistryOptions())
    pushed(registry, "crt/big", image, "v1")
    store = store_factory()
    record = store.pull(registry.ref("crt/big", "v1"))
    events: list[PushEvent] = []
    store.push(record.id, other.ref("crt/big", "v1"), events=events.append)
    sent = [e.current for e in events if e.status == "Pushing"]
    assert sent == sorted(sent) and len(sent) >= 3 and sent[0] == UPLOAD_CHUNK
    _assert_served(other, "crt/big", "v1", image)


def test_token_registry_push_needs_credentials(
        token_registry: Registry, registry: Registry, pushed, store_factory: StoreFactory,
        busybox_image: BuiltImage) -> None:
    pushed(registry, "crt/src", busybox_image, "v1")
    store = store_factory()
    record = store.pull(registry.ref("crt/src", "v1"))
    target = token_registry.ref("crt/pushed", "v1")
    with pytest.raises(AuthenticationRequired):
        store.push(record.id, target)
    creds = Credentials(username=token_registry.username, password=token_registry.password)
    store.push(record.id, target, credentials=creds)
    _assert_served(token_registry, "crt/pushed", "v1", busybox_image)


def test_push_refuses_what_it_cannot_name(registry: Registry, pushed,
                                          store_factory: StoreFactory,
                                          busybox_image: BuiltImage) -> None:
    pushed(registry, "crt/src", busybox_image, "v1")
    store = store_factory()
    record = store.pull(registry.ref("crt/src", "v1"))
    with pytest.raises(InvalidReference):
        store.push(record.id, f"{registry.netloc}/crt/x@{busybox_image.digest}")
    with pytest.raises(ImageNotFound):
        store.push("sha256:" + "0" * 64, registry.ref("crt/x", "v1"))


def test_search_reads_the_catalogs(registry: Registry, pushed, store_factory: StoreFactory,
                                   busybox_image: BuiltImage) -> None:
    for repo in ("crt/alpha-tools", "crt/beta", "team/alpha"):
        pushed(registry, repo, busybox_image, "v1")
    store = store_factory(short_name_registries=(registry.netloc,))
    assert sorted(store.search("alpha")) == [f"{registry.netloc}/crt/alpha-tools",
                                             f"{registry.netloc}/team/alpha"]
    assert store.search("alpha", limit=1) == [f"{registry.netloc}/crt/alpha-tools"]
    assert store.search("nothing-like-it") == []


def test_search_says_when_no_registry_has_a_catalog(store_factory: StoreFactory) -> None:
    with FakeRegistry().running() as fake:
        store = store_factory(short_name_registries=(fake.netloc,))
        with pytest.raises(CatalogUnavailable, match="offers no catalog"):
            store.search("anything")
