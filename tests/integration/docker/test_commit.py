"""docker diff, commit and export through Debian's docker CLI and docker-py: the changes a
container made (added, changed, deleted), an image made of them that runs with them, its
--change instructions, a running container committed (paused, then running again), and the
merged file system exported as a tar."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import time
from pathlib import Path

from tests.integration.docker.conftest import DOCKER_CLI, DockerRig

CHANGES = "echo hello > /greeting && rm /etc/group && mkdir -p /newdir/sub && echo x > /tmp/x"


def _changed(rig: DockerRig, name: str) -> None:
    rig.cli("run", "--name", name, "busybox", "sh", "-c", CHANGES)


def test_diff_lists_added_changed_and_deleted(docker_rig: DockerRig) -> None:
    _changed(docker_rig, "differ")
    lines = docker_rig.cli("diff", "differ").stdout.splitlines()
    assert {"A /greeting", "C /etc", "D /etc/group", "A /newdir", "A /newdir/sub",
            "C /tmp", "A /tmp/x"} <= set(lines), lines
    # the runtime's mount points (/etc/hosts, /etc/resolv.conf, /dev ...) are not changes
    assert not [line for line in lines if line.endswith(("/hosts", "/resolv.conf",
                                                         "/hostname", "/proc", "/sys"))], lines
    client = docker_rig.client()
    try:
        diff = client.containers.get("differ").diff()
    finally:
        client.close()
    assert {"Path": "/etc/group", "Kind": 2} in diff and {"Path": "/greeting", "Kind": 1} in diff
    fresh = docker_rig.cli("create", "busybox", "true").stdout.strip()
    assert docker_rig.cli("diff", fresh).stdout == ""


def test_commit_with_changes_runs_the_change(docker_rig: DockerRig) -> None:
    _changed(docker_rig, "committed")
    image_id = docker_rig.cli(
        "commit", "-a", "Ann Author <ann@example.com>", "-m", "the greeting",
        "-c", 'CMD ["cat", "/greeting"]', "-c", "ENV FOO=bar", "-c", "WORKDIR /newdir",
        "-c", "LABEL kind=committed", "-c", "EXPOSE 8080", "committed", "greeter:v1").stdout
    assert image_id.strip().startswith("sha256:")
    assert docker_rig.cli("run", "--rm", "greeter:v1").stdout == "hello\n"
    out = docker_rig.cli("run", "--rm", "greeter:v1", "sh", "-c",
                         "test ! -e /etc/group && pwd && echo $FOO && cat /tmp/x").stdout
    assert out == "/newdir\nbar\nx\n"
    info = json.loads(docker_rig.cli("image", "inspect", "greeter:v1").stdout)[0]
    assert info["Id"] == image_id.strip()
    assert info["Author"] == "Ann Author <ann@example.com>"
    assert info["Comment"] == "the greeting"
    assert info["Config"]["Labels"] == {"kind": "committed"}
    assert "8080/tcp" in info["Config"]["ExposedPorts"]
    base = json.loads(docker_rig.cli("image", "inspect", "busybox").stdout)[0]
    assert info["RootFS"]["Layers"][:-1] == base["RootFS"]["Layers"]
    history = docker_rig.cli("history", "--format", "{{.Comment}}", "greeter:v1").stdout
    assert history.splitlines()[0] == "the greeting"


def test_commit_of_a_running_container_pauses_it_and_leaves_it_running(
        docker_rig: DockerRig) -> None:
    client = docker_rig.client()
    try:
        c = client.containers.run(
            "busybox", ["sh", "-c", "echo live > /live; trap 'exit 0' TERM; sleep 86400 & wait"],
            detach=True, name="runner")
        docker_rig.cli("exec", "runner", "test", "-e", "/live")  # its first command is done
        image = c.commit(repository="live", tag="1", changes=["CMD cat /live"])
        c.reload()
        assert c.status == "running" and not c.attrs["State"]["Paused"]
        assert client.containers.run(image.id, remove=True) == b"live\n"
        # without pause too (the CLI's --pause=false)
        docker_rig.cli("commit", "--pause=false", "runner", "live:2")
        assert docker_rig.cli("run", "--rm", "live:2", "cat", "/live").stdout == "live\n"
        events = docker_rig.cli("events", "--since", str(int(time.time()) - 300), "--until",
                                str(int(time.time()) + 1), "--filter", "event=commit",
                                "--format", "{{.Actor.ID}}").stdout.split()
        assert events == [c.id, c.id]
    finally:
        client.close()


def test_commit_refuses_bad_requests(docker_rig: DockerRig) -> None:
    _changed(docker_rig, "bad")
    nothing = docker_rig.cli("commit", "no-such-container", check=False)
    assert nothing.returncode != 0 and "No such container" in nothing.stderr
    for change, message in (("RUN echo hi", "not a valid change"),
                            ("FROM busybox", "not a valid change"),
                            ("BOGUS x", "unknown instruction"),
                            ("EXPOSE 99999", "invalid containerPort")):
        proc = docker_rig.cli("commit", "-c", change, "bad", "x:y", check=False)
        assert proc.returncode != 0 and message in proc.stderr, (change, proc.stderr)
    proc = docker_rig.cli("commit", "bad", "UPPER/Case:x", check=False)
    assert proc.returncode != 0
    client = docker_rig.client()
    try:
        resp = client.api._post_json(client.api._url("/commit"), data=["not", "a", "config"],
                                     params={"container": "bad"})
        assert resp.status_code == 400, resp.text
    finally:
        client.close()
    images = docker_rig.cli("images", "-q").stdout.split()
    assert len(images) == 1  # busybox only: nothing was half-made


def test_export_streams_the_merged_file_system(docker_rig: DockerRig, tmp_path: Path) -> None:
    _changed(docker_rig, "exported")
    out = tmp_path / "fs.tar"
    docker_rig.cli("export", "-o", str(out), "exported")
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        assert tar.extractfile("greeting").read() == b"hello\n"  # type: ignore[union-attr]
    assert {"bin/busybox", "bin/sh", "newdir/sub", "tmp/x", "etc/passwd"} <= names
    assert "etc/group" not in names
    assert not [n for n in names if ".wh." in n]
    # a running container, through docker-py's stream
    client = docker_rig.client()
    try:
        c = client.containers.run("busybox", ["sh", "-c", "echo up > /up; sleep 86400"],
                                  detach=True)
        docker_rig.cli("exec", c.id, "test", "-e", "/up")
        data = b"".join(c.export())
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            assert tar.extractfile("up").read() == b"up\n"  # type: ignore[union-attr]
        c.remove(force=True)
    finally:
        client.close()
    missing = subprocess.run([DOCKER_CLI, "export", "nope"], env=docker_rig.env(),
                             capture_output=True, text=True)
    assert missing.returncode != 0 and "No such container" in missing.stderr
