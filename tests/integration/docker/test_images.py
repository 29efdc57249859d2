"""Slice (b): images through the docker CLI and docker-py: pull with progress, list, inspect,
history, tag, rmi (untag vs delete, conflicts)."""

from __future__ import annotations

import json

import docker
import pytest

from tests.integration.docker.conftest import DockerRig
from tests.rig.distribution import DistributionClient
from tests.rig.images import BuiltImage, push


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


def test_push_to_the_registry_reads_back_by_digest(docker_rig: DockerRig,
                                                   busybox_image: BuiltImage) -> None:
    rig = docker_rig
    target = f"{rig.registry.netloc}/mine/box"
    rig.cli("pull", "-q", "busybox")
    rig.cli("tag", "busybox", f"{target}:v1")
    out = rig.cli("push", f"{target}:v1").stdout
    assert f"The push refers to repository [{target}]" in out
    layer = busybox_image.layers[0].digest.split(":")[1][:12]
    # Same registry: the layer is mounted from busybox's repository, not sent again.
    assert f"{layer}: Mounted from busybox" in out or f"{layer}: Pushed" in out, out
    assert f"v1: digest: {busybox_image.digest} size: {busybox_image.manifest.size}" in out
    fetched = DistributionClient(rig.registry).get_manifest("mine/box", busybox_image.digest)
    assert fetched.digest == busybox_image.digest
    inspected = json.loads(rig.cli("image", "inspect", f"{target}:v1").stdout)[0]
    assert f"{target}@{busybox_image.digest}" in inspected["RepoDigests"]
    rig.cli("rmi", "busybox", f"{target}:v1")
    out = rig.cli("pull", f"{target}@{busybox_image.digest}").stdout
    assert f"Digest: {busybox_image.digest}" in out
    assert json.loads(rig.cli("image", "inspect", f"{target}@{busybox_image.digest}").stdout
                      )[0]["Id"] == busybox_image.image_id


def test_docker_py_push_streams_progress_and_aux(docker_rig: DockerRig,
                                                 busybox_image: BuiltImage) -> None:
    client = docker_rig.client()
    repo = f"{docker_rig.registry.netloc}/py/pushed"
    try:
        image = client.images.pull("busybox", tag="latest")
        assert image.tag(repo, "t1") and image.tag(repo, "t2")
        events = list(client.api.push(repo, stream=True, decode=True))  # no tag: every tag
        assert not [e for e in events if "error" in e], events
        aux = [e["aux"] for e in events if "aux" in e]
        assert [(a["Tag"], a["Digest"]) for a in aux] == \
            [("t1", busybox_image.digest), ("t2", busybox_image.digest)]
        with pytest.raises(docker.errors.NotFound):
            client.api.push(repo, tag="nope")
    finally:
        client.close()


def test_search_reads_the_registry_catalog(docker_rig: DockerRig) -> None:
    rows = docker_rig.cli("search", "--format", "{{.Name}} {{.StarCount}}", "busy").stdout
    assert rows == f"{docker_rig.registry.netloc}/busybox 0\n"
    assert docker_rig.cli("search", "--format", "{{.Name}}", "nothing-like-it").stdout == ""
    assert docker_rig.cli("search", "--filter", "is-official=true", "--format={{.Name}}",
                          "busy").stdout == ""
    client = docker_rig.client()
    try:
        assert [r["name"] for r in client.images.search("busybox")] == \
            [f"{docker_rig.registry.netloc}/busybox"]
    finally:
        client.close()


def test_prune_removes_dangling_then_unused(docker_rig: DockerRig, busybox_image: BuiltImage,
                                            pause_image: BuiltImage) -> None:
    rig = docker_rig
    registry = DistributionClient(rig.registry)
    push(registry, "moving", pause_image, tag="latest")
    rig.cli("pull", "-q", "moving")
    push(registry, "moving", busybox_image, tag="latest")
    rig.cli("pull", "-q", "moving")  # the tag moves: the pause image is left dangling
    dangling = _images(rig, "--filter", "dangling=true")
    assert [r["ID"] for r in dangling] == [pause_image.image_id]
    assert {r["ID"] for r in _images(rig, "-a")} == {pause_image.image_id,
                                                    busybox_image.image_id}
    out = rig.cli("image", "prune", "-f").stdout
    assert f"deleted: {pause_image.image_id}" in out.lower() and "Total reclaimed space" in out
    rig.cli("create", "--name", "user", "moving")
    assert "Total reclaimed space: 0B" in rig.cli("image", "prune", "-a", "-f").stdout
    rig.cli("rm", "user")
    out = rig.cli("image", "prune", "-a", "-f").stdout
    assert busybox_image.image_id in out
    assert _images(rig, "-a") == []


def test_rmi_force_untags_an_image_a_stopped_container_uses(docker_rig: DockerRig,
                                                          busybox_image: BuiltImage) -> None:
    rig = docker_rig
    rig.cli("pull", "-q", "busybox")
    rig.cli("create", "--name", "holder", "busybox", "true")
    out = rig.cli("rmi", "-f", "busybox").stdout
    assert "Untagged: busybox" in out and "Deleted" not in out
    assert [r["ID"] for r in _images(rig, "-a")] == [busybox_image.image_id]
    assert _images(rig) == []
    rig.cli("rm", "holder")
