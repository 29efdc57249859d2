from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from crid.api import api_pb2 as pb
from tests.integration.containers.helpers import ContainerRig
from tests.integration.pods.helpers import cleanup_cgroup_parent, remove_test_network
from tests.rig.daemon import start_crid
from tests.rig.distribution import DistributionClient
from tests.rig.images import BuiltImage, push
from tests.rig.leaks import Leaks
from tests.rig.registry import Registry


def write_config(base: Path, bridge: str) -> Path:
    """A test bridge and pod CIDR of our own (never crid0 / 10.88.0.0/16)."""
    cfg = base / "crid.toml"
    cfg.write_text(f'[network]\nmode = "builtin"\nbridge = "{bridge}"\n'
                   f'pod_cidr = "10.214.0.0/16"\ncni_conf_dir = "{base}/cni"\n'
                   '[pods]\nshm_size = "8Mi"\n')
    return cfg


def pull_busybox(r: ContainerRig, registry: Registry, busybox_image: BuiltImage) -> None:
    """Push the busybox test image to the rig registry and pull it into the rig's crid."""
    push(DistributionClient(registry), "crt/busybox", busybox_image, tag="1.0")
    r.image = f"{registry.host}:{registry.port}/crt/busybox:1.0"
    r.daemon.images.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=r.image)),
                              timeout=60)


@contextmanager
def serving(r: ContainerRig, registry: Registry, busybox_image: BuiltImage,
            remove_cgroups: Callable[[], None]) -> Iterator[ContainerRig]:
    """The rig with busybox pulled; afterwards its pods gone, its crid stopped (cleanly),
    its cgroups (``remove_cgroups``) and its test bridge removed, and nothing of them left:
    no zombie or stray process of the daemon, no process or directory in its cgroups."""
    try:
        pull_busybox(r, registry, busybox_image)
        yield r
    finally:
        try:
            r.remove_all()
            left = Leaks.of(r.daemon, r.cgroup_parent)
            assert r.daemon.stop() == 0, r.daemon.log()
            after = Leaks.after_stop(r.daemon.run_root, r.cgroup_parent)
        finally:
            remove_cgroups()
            remove_test_network(r.bridge)
    assert (left, after) == (Leaks(), Leaks())


@pytest.fixture
def rig(tmp_path: Path, registry: Registry, busybox_image: BuiltImage) -> Iterator[ContainerRig]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    bridge = f"crtc{secrets.token_hex(3)}"
    parent = f"/crt-ctr-{secrets.token_hex(4)}"
    cfg = write_config(tmp_path, bridge)
    daemon = start_crid(tmp_path, config=cfg)
    with serving(ContainerRig(tmp_path, cfg, daemon, parent, bridge), registry, busybox_image,
                 lambda: cleanup_cgroup_parent(parent)) as r:
        yield r
