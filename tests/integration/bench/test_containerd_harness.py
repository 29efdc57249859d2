"""The bench's containerd: starts with its own config, pulls from a rig registry, cleans up."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.bench.containerd import ContainerdOptions, _mounts_under, _shim_pids, running_containerd
from tests.rig.cri_client import CriClient
from tests.rig.distribution import DistributionClient
from tests.rig.images import BuiltImage, push
from tests.rig.registry import Registry


def test_containerd_pulls_from_rig_registry_and_leaves_nothing(
    registry: Registry, busybox_image: BuiltImage
) -> None:
    push(DistributionClient(registry), "crt-rig/busybox", busybox_image, tag="v1")
    ref = registry.ref("crt-rig/busybox", "v1")
    workdir = Path(tempfile.mkdtemp(prefix="crt-rig-ctd-")) / "containerd"
    options = ContainerdOptions(sandbox_image=registry.ref("crt-rig/pause", "3.10"),
                                plain_http_registries=(registry.netloc,))
    with running_containerd(workdir, options) as ctd, CriClient(ctd.socket) as client:
        assert client.version().runtime_name == "containerd"
        client.pull_image(ref)
        image = client.image_status(ref)
        assert image is not None
        assert image.id == busybox_image.image_id
        want = f"{registry.netloc}/crt-rig/busybox@{busybox_image.digest}"
        assert list(image.repo_digests) == [want]
        assert _mounts_under(workdir) == []
    assert not workdir.exists()
    assert _shim_pids(ctd.socket) == []
    workdir.parent.rmdir()
