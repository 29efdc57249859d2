"""Container sizes: `docker ps --size` and `docker inspect --size` report what the container
wrote (SizeRw) and that plus its image (SizeRootFs)."""

from __future__ import annotations

import json

from tests.integration.docker.conftest import DockerRig


def test_ps_and_inspect_sizes(docker_rig: DockerRig) -> None:
    rig = docker_rig
    rig.cli("pull", "-q", "busybox")
    rig.cli("run", "--name", "sized", "busybox", "sh", "-c",
            "head -c 3000 /dev/zero > /written; ln /written /again; ln -s /written /lnk")
    image = json.loads(rig.cli("image", "inspect", "busybox").stdout)[0]["Size"]
    got = json.loads(rig.cli("inspect", "--size", "sized").stdout)[0]
    assert got["SizeRw"] == 3000 + len("/written")  # a hard link once, a symlink's own size
    assert got["SizeRootFs"] == got["SizeRw"] + image
    assert "SizeRw" not in json.loads(rig.cli("inspect", "sized").stdout)[0]
    size = rig.cli("ps", "-a", "--size", "--format", "{{.Size}}").stdout.strip()
    assert size.startswith("3.01kB (virtual "), size
    client = rig.client()
    try:
        row = client.api.containers(all=True, size=True)[0]
        assert (row["SizeRw"], row["SizeRootFs"]) == (got["SizeRw"], got["SizeRootFs"])
    finally:
        client.close()
    rig.cli("rm", "sized")
