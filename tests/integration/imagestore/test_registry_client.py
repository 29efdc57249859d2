"""Registry client behaviours: redirects to blob storage, anonymous tokens, short names."""

from __future__ import annotations

import base64
import shutil
import ssl
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from imagestore import Credentials, ImageNotFound, RegistryOptions, RegistryUnavailable
from tests.integration.imagestore.conftest import StoreFactory
from tests.integration.imagestore.fake_registry import FakeRegistry
from tests.rig import catalog
from tests.rig.registry import RegistryOptions as RigRegistryOptions

IMAGE = catalog.busybox_image()


@pytest.fixture
def fakes() -> Iterator[tuple[FakeRegistry, FakeRegistry]]:
    """(registry with basic auth, blob storage on another port)."""
    registry, storage = FakeRegistry(), FakeRegistry()
    registry.add("crt/img", IMAGE)
    registry.basic_auth = "Basic " + base64.b64encode(b"crt:s3cret").decode()
    with registry.running(), storage.running():
        yield registry, storage


def test_redirect_to_storage_drops_authorization(fakes: tuple[FakeRegistry, FakeRegistry],
                                                 store_factory: StoreFactory) -> None:
    registry, storage = fakes
    layer = IMAGE.layers[0]
    storage.faults[f"/storage/{layer.digest}"] = lambda h, _: h.serve(layer.data)  # type: ignore

    def redirect(h: BaseHTTPRequestHandler, _: bytes) -> None:
        h.reply(307, Location=f"http://{storage.netloc}/storage/{layer.digest}")  # type: ignore
    registry.faults[f"/v2/crt/img/blobs/{layer.digest}"] = redirect
    record = store_factory().pull(f"{registry.netloc}/crt/img:latest",
                                  Credentials("crt", "s3cret"))
    assert record.id == IMAGE.image_id
    [(path, headers)] = storage.seen_headers
    assert (path, "Authorization" in headers) == (f"/storage/{layer.digest}", False)
    blob_gets = [h for p, h in registry.seen_headers if p.endswith(layer.digest)]
    assert blob_gets and all(h.get("Authorization") == registry.basic_auth for h in blob_gets)


def test_anonymous_token_pull(registry_factory, rig_ca, pushed,
                              store_factory: StoreFactory) -> None:
    reg = registry_factory(RigRegistryOptions(auth="token", ca=rig_ca,
                                              anonymous_actions=("pull",)))
    pushed(reg, "crt/public", IMAGE)
    assert store_factory().pull(reg.ref("crt/public")).id == IMAGE.image_id


def test_short_names_search_registries_in_order(store_factory: StoreFactory) -> None:
    empty, full = FakeRegistry(), FakeRegistry()
    full.add("crt/img", IMAGE, "v1")
    with empty.running(), full.running():
        store = store_factory(short_name_registries=(empty.netloc, full.netloc))
        record = store.pull("crt/img:v1")
        assert record.repo_tags == (f"{full.netloc}/crt/img:v1",)
        assert store.status("crt/img:v1") == record
        with pytest.raises(ImageNotFound):
            store.pull("crt/absent")


def test_pull_credentials_go_to_the_upstream_not_to_mirrors(
        fakes: tuple[FakeRegistry, FakeRegistry], store_factory: StoreFactory) -> None:
    upstream, _ = fakes
    mirror = FakeRegistry()
    mirror.add("crt/img", IMAGE)
    mirror.basic_auth = "Basic " + base64.b64encode(b"mirror:other").decode()
    with mirror.running():
        store = store_factory(registries={upstream.netloc: RegistryOptions(
            mirrors=(f"http://{mirror.netloc}",))})
        record = store.pull(f"{upstream.netloc}/crt/img:latest", Credentials("crt", "s3cret"))
    assert record.id == IMAGE.image_id
    assert mirror.seen_headers and all("Authorization" not in h for _, h in mirror.seen_headers)
    assert any(h.get("Authorization") == upstream.basic_auth for _, h in upstream.seen_headers)


def test_client_certificate_from_certs_dir(rig_ca, store_factory: StoreFactory,
                                           tmp_path: Path) -> None:
    server, client = rig_ca.issue("crt-img-server"), rig_ca.issue("crt-img-client")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(server.cert_path, server.key_path)
    ctx.load_verify_locations(rig_ca.cert_path)
    ctx.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no registry
    reg = FakeRegistry(tls=ctx)
    reg.add("crt/img", IMAGE)
    with reg.running():
        certs = tmp_path / "certs.d" / reg.netloc
        certs.mkdir(parents=True)
        shutil.copy(rig_ca.cert_path, certs / "ca.crt")
        with pytest.raises(RegistryUnavailable):
            store_factory().pull(f"{reg.netloc}/crt/img:latest")
        shutil.copy(client.cert_path, certs / "client.cert")
        shutil.copy(client.key_path, certs / "client.key")
        record = store_factory(root=tmp_path / "with-client-cert").pull(
            f"{reg.netloc}/crt/img:latest")
        assert record.id == IMAGE.image_id
