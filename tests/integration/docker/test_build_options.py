"""docker build's options beyond the Dockerfile (classic builder, POST /build): a base image
pulled with Docker's progress messages, --rm=false keeping the RUN containers as Docker
containers, --memory / --cpu-shares / --cpu-quota applied to the RUN containers, and
`docker builder prune` emptying the layer cache and its intermediate images."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from tests.integration.docker.conftest import DockerRig
from tests.integration.docker.test_build import _build, _context


def _tar(dockerfile: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile.encode())
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
    return buf.getvalue()


def test_base_image_pull_streams_docker_progress(docker_rig: DockerRig) -> None:
    client = docker_rig.client()
    try:
        messages = list(client.api.build(fileobj=io.BytesIO(_tar("FROM busybox\nRUN true\n")),
                                         custom_context=True, decode=True))
    finally:
        client.close()
    assert not [m for m in messages if "error" in m], messages
    statuses = [m.get("status", "") for m in messages]
    assert {"status": "Pulling from busybox", "id": "latest"} in messages, messages
    assert "Pull complete" in statuses and "Pulling fs layer" in statuses
    assert [s for s in statuses if s.startswith("Digest: sha256:")]
    assert "Status: Downloaded newer image for busybox" in statuses
    order = [i for i, m in enumerate(messages)
             if m.get("stream", "").startswith(("Step 1/2", "Step 2/2"))]
    pulled = statuses.index("Pull complete")
    assert order[0] < pulled < order[1]  # between FROM and the next step, as Docker prints


def test_rm_false_keeps_the_run_containers(docker_rig: DockerRig, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nRUN echo one > /one\nRUN echo two > /two\n")
    out = _build(docker_rig, "--rm=false", "-t", "kept:1", str(ctx)).stdout
    assert "Removing intermediate container" not in out
    running_in = [line.split()[-1] for line in out.splitlines() if "Running in" in line]
    assert len(running_in) == 2
    rows = docker_rig.cli("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Status}}").stdout
    ids = {line.split()[0][:12]: line for line in rows.splitlines()}
    assert set(running_in) <= set(ids), (running_in, rows)
    assert all("Exited (0)" in ids[c] for c in running_in), rows
    assert docker_rig.cli("diff", running_in[1]).stdout.splitlines() == ["A /two"]
    docker_rig.cli("rm", *running_in)
    assert docker_rig.cli("run", "--rm", "kept:1", "cat", "/one", "/two").stdout == "one\ntwo\n"
    # the default (rm=true) leaves none
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo three > /three\n")
    _build(docker_rig, str(ctx))
    assert docker_rig.cli("ps", "-aq").stdout == ""


def test_resource_limits_apply_to_run_containers(docker_rig: DockerRig, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\n"
                   "RUN cat /sys/fs/cgroup/memory/memory.limit_in_bytes > /mem && "
                   "cat /sys/fs/cgroup/cpu/cpu.shares > /shares && "
                   "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us > /quota\n")
    _build(docker_rig, "--memory", "64m", "--cpu-shares", "512", "--cpu-quota", "50000",
           "-t", "limited", str(ctx))
    out = docker_rig.cli("run", "--rm", "limited", "cat", "/mem", "/shares", "/quota").stdout
    assert out.split() == [str(64 << 20), "512", "50000"]
    bad = _build(docker_rig, "--memory", "1k", str(ctx), check=False)
    assert bad.returncode != 0 and "Minimum memory limit" in bad.stderr


def test_builder_prune_empties_the_cache(docker_rig: DockerRig, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nRUN echo a > /a\nENV X=1\n")
    _build(docker_rig, "-t", "pruned", str(ctx))
    assert "Using cache" in _build(docker_rig, "-t", "pruned", str(ctx)).stdout
    before = set(docker_rig.cli("images", "-aq", "--no-trunc").stdout.split())
    client = docker_rig.client()
    try:
        result = client.api.prune_builds()
    finally:
        client.close()
    deleted = set(result["CachesDeleted"] or [])
    final = json.loads(docker_rig.cli("image", "inspect", "pruned").stdout)[0]["Id"]
    assert deleted and final not in deleted and deleted <= before
    assert result["SpaceReclaimed"] >= 0  # the final image shares their layers
    after = set(docker_rig.cli("images", "-aq", "--no-trunc").stdout.split())
    assert after == before - deleted
    assert "Using cache" not in _build(docker_rig, "-t", "pruned", str(ctx)).stdout
    assert docker_rig.cli("run", "--rm", "pruned", "cat", "/a").stdout == "a\n"
    cli = docker_rig.cli("builder", "prune", "-f", check=False)
    assert cli.returncode == 0, cli.stderr
    assert "Total reclaimed space" in cli.stdout
