"""Registry variants beyond the fixtures: token over TLS, mirrors of TLS and token upstreams,
refused combinations, and cleanup."""

from __future__ import annotations

import os

import pytest

from tests.rig.distribution import DistributionClient
from tests.rig.fixtures import RegistryFactory
from tests.rig.images import BuiltImage, push
from tests.rig.registry import RegistryError, RegistryOptions, running_registry
from tests.rig.tls import CertificateAuthority


@pytest.mark.parametrize("upstream", [RegistryOptions(tls=True),
                                      RegistryOptions(auth="token", tls=True)],
                         ids=["tls", "token-tls"])
def test_mirror_of_tls_and_token_upstreams(registry_factory: RegistryFactory,
                                           upstream: RegistryOptions,
                                           busybox_image: BuiltImage) -> None:
    origin = registry_factory(upstream)
    mirror = registry_factory(RegistryOptions(upstream=origin))
    push(DistributionClient(origin), "crt-rig/m", busybox_image, tag="v1")
    client = DistributionClient(mirror)
    assert client.get_manifest("crt-rig/m", "v1").digest == busybox_image.digest
    for blob in busybox_image.blobs():
        assert client.get_blob("crt-rig/m", blob.digest).digest == blob.digest


def test_token_registry_grants_anonymous_pull_when_asked(registry_factory: RegistryFactory,
                                                         rig_ca: CertificateAuthority,
                                                         busybox_image: BuiltImage) -> None:
    reg = registry_factory(RegistryOptions(auth="token", tls=True, ca=rig_ca,
                                           anonymous_actions=("pull",)))
    push(DistributionClient(reg), "crt-rig/public", busybox_image, tag="v1")
    anonymous = DistributionClient(reg, anonymous=True)
    assert anonymous.get_manifest("crt-rig/public", "v1").digest == busybox_image.digest


def test_mirror_of_basic_auth_upstream_is_refused(htpasswd_registry) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RegistryError, match="basic-auth"), \
            running_registry(RegistryOptions(upstream=htpasswd_registry)):
        pass


def test_registry_is_stopped_and_removed() -> None:
    with running_registry() as reg:
        assert reg.pid is not None and reg.storage is not None
        pid, workdir = reg.pid, reg.storage.parent
        assert os.path.exists(f"/proc/{pid}")
    assert not os.path.exists(f"/proc/{pid}")
    assert not workdir.exists()
