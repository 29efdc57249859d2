"""Slice (b): images through the docker CLI and docker-py: pull with progress, list, inspect,
history, tag, rmi (untag vs delete, conflicts)."""

from __future__ import annotations

import json

import pytest

from tests.integration.docker.conftest import DockerRig
from tests.rig.images import BuiltImage


def _images(rig: DockerRig, *args: str) -> list[dict]:
    out = rig.cli("images", "--no-trunc", "--format", "{{json .}}", *args).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_pull_streams_docker_progress(docker_rig: DockerRig, busybox_image: BuiltImage) -> None:
    client = docker_rig.client()
    try:
        events = list(client.api.pull("busybox", tag="latest", stream=True, decode=True))
    finally:
        client.close()
    statuses = [e.get("status", "") for e in events]
    assert not [e for e in events if "error" in e], events
    assert statuses[0] == "Pulling from busybox"
    layer = busybox_image.layers[0].digest.split(":")[1][:12]
    per_layer = [e["status"] for e in events if e.get("id") == layer]
    assert per_layer[0] == "Pulling fs layer"
    assert per_layer[-1] == "Pull complete"
    assert {"Waiting", "Downloading", "Verifying Checksum", "Download complete",
            "Extracting"} <= set(per_layer)
    downloading = [e for e in events if e.get("status") == "Downloading"]
    assert downloading[-1]["progressDetail"]["current"] == \
        downloading[-1]["progressDetail"]["total"] == busybox_image.layers[0].size
    assert statuses[-2].startswith("Digest: sha256:")
    assert statuses[-1] == "Status: Downloaded newer image for busybox:latest"


def test_cli_pull_list_inspect_history(docker_rig: DockerRig, busybox_image: BuiltImage) -> None:
    out = docker_rig.cli("pull", "busybox").stdout
    assert "Pull complete" in out or "Download complete" in out, out
    assert "Status: Downloaded newer image for busybox:latest" in out
    again = docker_rig.cli("pull", "busybox").stdout
    assert "Status: Image is up to date for busybox:latest" in again
    name = f"{docker_rig.registry.netloc}/busybox"
    rows = _images(docker_rig)
    assert [(r["Repository"], r["Tag"], r["ID"]) for r in rows] == \
        [(name, "latest", busybox_image.image_id)]
    digests = _images(docker_rig, "--digests")
    assert digests[0]["Digest"] == busybox_image.digest
    inspected = json.loads(docker_rig.cli("image", "inspect", "busybox").stdout)[0]
    assert inspected["Id"] == busybox_image.image_id
    assert inspected["RootFS"]["Layers"] == list(busybox_image.diff_ids)
    assert inspected["Os"] == "linux"
    history = docker_rig.cli("history", "--no-trunc", "--format", "{{json .}}", "busybox")
    rows = [json.loads(line) for line in history.stdout.splitlines()]
    assert rows[0]["ID"] == busybox_image.image_id
    filtered = _images(docker_rig, "--filter", "reference=*busybox*")
    assert len(filtered) == 1
    assert _images(docker_rig, "--filter", "reference=nothing*") == []
    bad = docker_rig.cli("images", "--filter", "colour=red", check=False)
    assert bad.returncode != 0 and "invalid filter 'colour'" in bad.stderr


def test_tag_and_rmi_untag_then_delete(docker_rig: DockerRig, busybox_image: BuiltImage) -> None:
    docker_rig.cli("pull", "busybox")
    docker_rig.cli("tag", "busybox", "mine/box:v1")
    tags = {(r["Repository"], r["Tag"]) for r in _images(docker_rig)}
    assert ("docker.io/mine/box", "v1") in tags or (
        f"{docker_rig.registry.netloc}/mine/box", "v1") in tags
    conflict = docker_rig.cli("rmi", busybox_image.image_id, check=False)
    assert conflict.returncode != 0 and "must be forced" in conflict.stderr
    out = docker_rig.cli("rmi", "mine/box:v1").stdout
    assert "Untagged: mine/box:v1" in out and "Deleted" not in out
    out = docker_rig.cli("rmi", "busybox").stdout
    assert "Deleted: " + busybox_image.image_id in out
    assert _images(docker_rig, "-a") == []
    missing = docker_rig.cli("rmi", "busybox", check=False)
    assert missing.returncode != 0 and "No such image: busybox" in missing.stderr


def test_rmi_of_an_image_a_container_uses_is_a_conflict(docker_rig: DockerRig) -> None:
    docker_rig.cli("pull", "busybox")
    docker_rig.cli("create", "--name", "holder", "busybox", "true")
    refused = docker_rig.cli("rmi", "busybox", check=False)
    assert refused.returncode != 0 and "conflict" in refused.stderr.lower(), refused.stderr
    docker_rig.cli("rm", "holder")
    docker_rig.cli("rmi", "busybox")


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"Image": 5}'])
def test_bad_create_bodies_are_400_and_make_nothing(docker_rig: DockerRig, body: bytes) -> None:
    import socket

    req = (b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nConnection: close\r\n"
           b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() +
           b"\r\n\r\n" + body)
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(docker_rig.socket))
        s.sendall(req)
        got = b""
        while chunk := s.recv(65536):
            got += chunk
    assert got.startswith(b"HTTP/1.1 400"), got
    assert docker_rig.cli("ps", "-aq").stdout == ""
