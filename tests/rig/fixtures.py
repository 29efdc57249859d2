"""Pytest fixtures of the test rig (loaded from `tests/conftest.py` as a plugin).

Registries are per test (each starts in ~0.1 s and is stopped and removed afterwards); built
images are per session (building is deterministic, so sharing them is safe).
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.rig import catalog
from tests.rig.distribution import DistributionClient
from tests.rig.images import BuiltImage, BuiltIndex
from tests.rig.registry import Registry, RegistryOptions, running_registry
from tests.rig.tls import CertificateAuthority

RegistryFactory = Callable[[RegistryOptions], Registry]


@pytest.fixture(scope="session")
def rig_ca() -> Iterator[CertificateAuthority]:
    """A session-wide self-signed CA (`.cert_path` to trust, `.issue(name)` for leaf certs)."""
    with tempfile.TemporaryDirectory(prefix="crt-rig-ca-") as tmp:
        yield CertificateAuthority(Path(tmp))


@pytest.fixture
def registry_factory() -> Iterator[RegistryFactory]:
    """Start any registry variant: `registry_factory(RegistryOptions(auth="token", tls=True))`.
    All registries started are stopped when the test ends."""
    with contextlib.ExitStack() as stack:
        yield lambda options: stack.enter_context(running_registry(options))


@pytest.fixture
def registry(registry_factory: RegistryFactory) -> Registry:
    """Plain HTTP, no auth."""
    return registry_factory(RegistryOptions())


@pytest.fixture
def tls_registry(registry_factory: RegistryFactory, rig_ca: CertificateAuthority) -> Registry:
    """HTTPS with a cert from `rig_ca` (`registry.ca_path` is the CA to trust), no auth."""
    return registry_factory(RegistryOptions(tls=True, ca=rig_ca))


@pytest.fixture
def htpasswd_registry(registry_factory: RegistryFactory) -> Registry:
    """Plain HTTP with htpasswd (bcrypt) basic auth: `registry.username` / `.password`."""
    return registry_factory(RegistryOptions(auth="basic"))


@pytest.fixture
def token_registry(registry_factory: RegistryFactory, rig_ca: CertificateAuthority) -> Registry:
    """Plain HTTP with bearer-token auth: the realm (`registry.token_realm`) is the rig's token
    server, which checks `registry.username`/`.password` and grants anonymous callers nothing."""
    return registry_factory(RegistryOptions(auth="token", ca=rig_ca))


@pytest.fixture
def mirror_registry(registry_factory: RegistryFactory, registry: Registry) -> Registry:
    """A pull-through cache of the `registry` fixture (`mirror.upstream is registry`):
    push to `registry`, pull from the mirror."""
    return registry_factory(RegistryOptions(upstream=registry))


@pytest.fixture
def registry_client() -> Callable[[Registry], DistributionClient]:
    """`registry_client(reg)` → a DistributionClient using the registry's own credentials."""
    return DistributionClient


@pytest.fixture(scope="session")
def busybox_image() -> BuiltImage:
    """One-layer OCI busybox image, gzip, Cmd ["/bin/sh"]."""
    return catalog.busybox_image()


@pytest.fixture(scope="session")
def pause_image() -> BuiltImage:
    return catalog.pause_image()


@pytest.fixture(scope="session")
def kitchen_sink_image() -> BuiltImage:
    """Three layers (gzip, zstd, none) with every entry kind, whiteouts and opaque dirs."""
    return catalog.kitchen_sink_image()


@pytest.fixture(scope="session")
def multiarch_index() -> BuiltIndex:
    """OCI index: amd64 + arm64 + arm/v7 (the native entry is busybox)."""
    return catalog.multiarch_index()
