"""docker build (the classic builder's POST /build) through Debian's docker CLI with
DOCKER_BUILDKIT=0 and docker-py's images.build: multi-stage with COPY --from, ARG and
--build-arg, .dockerignore, the layer cache, quiet builds, failures and cancellation, and
hostile contexts; nothing of a build (step pod, container, mount, cgroup, directory) stays."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from tests.integration.docker.conftest import DOCKER_CLI, DockerRig
from tests.integration.pods.helpers import CGROUP_ROOTS, bridge_ports
from tests.rig.daemon import start_crid

MULTISTAGE = """\
ARG BASE=busybox
FROM $BASE AS stage1
ARG BASE
ARG GREETING=hello
RUN echo "$GREETING from $BASE" > /greeting && mkdir -p /out && cp /greeting /out/
FROM busybox
COPY --from=stage1 /out/greeting /greeting
COPY app/ /app/
WORKDIR /app
ENV FOO=bar
LABEL org.example.kind=test
CMD ["sh", "-c", "cat /greeting; ls /app; echo $FOO"]
"""


def _context(tmp: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    ctx = tmp / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_text(text)
    return ctx


def _build(rig: DockerRig, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(rig.env(), DOCKER_BUILDKIT="0")
    proc = subprocess.run([DOCKER_CLI, "build", *args], env=env, capture_output=True,
                          text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker build exited {proc.returncode}:\n{proc.stdout}\n"
                             f"{proc.stderr}\n--- crid log tail:\n{rig.daemon.log()[-4000:]}")
    return proc


def _layers(rig: DockerRig) -> set[str]:
    return {p.name for p in (rig.daemon.root / "images" / "layers").iterdir()}


def _leftovers(rig: DockerRig) -> dict[str, list[str]]:
    """What a build could leave: step containers' directories, mounts under crid's dirs,
    work directories, step pods' cgroups and veths."""
    root, run = str(rig.daemon.root), str(rig.daemon.run_root)
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[4] for line in f
                  if line.split()[4].startswith((root + "/", run + "/"))]
    cgroups = [str(p) for base in CGROUP_ROOTS
               for p in (base / rig.cgroup_parent.lstrip("/")).glob("*") if p.is_dir()]
    work = rig.daemon.root / "build"
    return {
        "containers": sorted(p.name for p in (rig.daemon.root / "containers").glob("*")),
        "mounts": mounts,
        "work": sorted(p.name for p in work.glob("*") if p.name != "cache.json"),
        "cgroups": cgroups,
        "veths": bridge_ports(_bridge(rig)),
    }


def _bridge(rig: DockerRig) -> str:
    text = (rig.daemon.root.parent / "crid.toml").read_text()
    return text.split('bridge = "')[1].split('"')[0]


def _nothing_left(rig: DockerRig) -> dict[str, list[str]]:
    return {"containers": [], "mounts": [], "work": [], "cgroups": [], "veths": []}


def test_multistage_build_with_args_runs_and_rebuilds_from_cache(
        docker_rig: DockerRig, tmp_path: Path) -> None:
    ctx = _context(tmp_path, MULTISTAGE, {"app/one.txt": "1", "app/two.txt": "2"})
    out = _build(docker_rig, "--build-arg", "GREETING=hi", "-t", "multi:one", "-t", "multi:two",
                 str(ctx)).stdout
    assert "Step 1/11 : FROM $BASE AS stage1" in out
    assert "Step 5/11 : FROM busybox" in out
    assert " ---> Running in " in out and "Removing intermediate container" in out
    assert "Successfully tagged multi:one\n" in out and "Successfully tagged multi:two\n" in out
    built = out.split("Successfully built ")[1].split()[0]
    run = docker_rig.cli("run", "--rm", "multi:two").stdout
    assert run == "hi from busybox\none.txt\ntwo.txt\nbar\n"
    inspect = json.loads(docker_rig.cli("image", "inspect", "multi:one").stdout)[0]
    assert inspect["Id"].removeprefix("sha256:")[:12] == built
    assert inspect["Config"]["WorkingDir"] == "/app"
    assert inspect["Config"]["Labels"] == {"org.example.kind": "test"}
    assert "FOO=bar" in inspect["Config"]["Env"]

    layers = _layers(docker_rig)
    again = _build(docker_rig, "--build-arg", "GREETING=hi", "-t", "multi:one", str(ctx)).stdout
    assert again.count(" ---> Using cache") == 9  # every step but the two FROMs
    assert f"Successfully built {built}" in again
    assert _layers(docker_rig) == layers  # an unchanged rebuild writes no layer

    changed = _build(docker_rig, "--build-arg", "GREETING=bye", str(ctx)).stdout
    assert "Step 4/11 : RUN" in changed
    assert "Using cache" not in changed.split("Step 4/11")[1].split("Step 5/11")[0]
    assert _leftovers(docker_rig) == _nothing_left(docker_rig)


def test_dockerignore_target_labels_and_no_cache(docker_rig: DockerRig, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox AS base\nCOPY . /ctx/\nRUN ls -a /ctx > /listing\n"
                   "FROM base AS later\nRUN false\n",
                   {".dockerignore": "secret*\n**/*.log\n!keep.log\n", "secret.txt": "s",
                    "a.txt": "a", "sub/x.log": "x", "keep.log": "k"})
    out = _build(docker_rig, "--target", "base", "--label", "built.by=crid", "-t", "ign",
                 str(ctx)).stdout
    assert "RUN false" not in out  # the later stage is not built
    listing = docker_rig.cli("run", "--rm", "ign", "cat", "/listing").stdout.split()
    assert sorted(listing) == [".", "..", ".dockerignore", "Dockerfile", "a.txt", "keep.log",
                               "sub"]
    labels = json.loads(docker_rig.cli("image", "inspect", "ign").stdout)[0]["Config"]["Labels"]
    assert labels == {"built.by": "crid"}
    fresh = _build(docker_rig, "--no-cache", "--target", "base", str(ctx)).stdout
    assert "Using cache" not in fresh


def test_failing_run_reports_its_code_and_leaves_nothing(docker_rig: DockerRig,
                                                         tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nRUN echo about to fail && exit 3\n")
    proc = _build(docker_rig, str(ctx), check=False)
    assert proc.returncode == 3, proc
    assert "about to fail" in proc.stdout
    assert "The command '/bin/sh -c echo about to fail && exit 3' returned a non-zero code: 3" \
        in proc.stderr
    assert _leftovers(docker_rig) == _nothing_left(docker_rig)
    assert docker_rig.cli("ps", "-aq").stdout == ""


def test_quiet_build_prints_only_the_id(docker_rig: DockerRig, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nRUN echo noisy\nENV A=1\n")
    out = _build(docker_rig, "-q", "-t", "quiet", str(ctx)).stdout
    image_id = json.loads(docker_rig.cli("image", "inspect", "quiet").stdout)[0]["Id"]
    assert out == image_id + "\n"


def test_bad_dockerfile_and_unknown_base_are_clear_errors(docker_rig: DockerRig,
                                                           tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nFROBNICATE now\n")
    proc = _build(docker_rig, str(ctx), check=False)
    assert proc.returncode != 0
    assert "unknown instruction: FROBNICATE" in proc.stderr
    ctx = _context(tmp_path, "FROM nosuchimage:nope\nRUN true\n")
    proc = _build(docker_rig, str(ctx), check=False)
    assert proc.returncode != 0
    assert "nosuchimage" in proc.stderr
    proc = _build(docker_rig, "-f", "Missing.Dockerfile", str(ctx), check=False)
    assert proc.returncode != 0
    assert "Missing.Dockerfile" in proc.stderr
    assert _leftovers(docker_rig) == _nothing_left(docker_rig)


def test_client_going_away_cancels_the_build(docker_rig: DockerRig, tmp_path: Path) -> None:
    proc = _start_sleeping_build(docker_rig, tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _wait_until(lambda: _leftovers(docker_rig) == _nothing_left(docker_rig),
                lambda: f"a cancelled build left {_leftovers(docker_rig)}")


def _start_sleeping_build(rig: DockerRig, tmp_path: Path) -> subprocess.Popen[str]:
    """A build whose RUN step has said "started" and sleeps."""
    ctx = _context(tmp_path, "FROM busybox\nRUN echo started && sleep 300\n")
    env = dict(rig.env(), DOCKER_BUILDKIT="0")
    proc = subprocess.Popen([DOCKER_CLI, "build", str(ctx)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen = ""
    while "\nstarted\n" not in seen:  # the step's own output, not its announcement
        line = proc.stdout.readline()
        if not line:
            proc.wait()
            raise AssertionError(seen)
        seen += line
    assert _leftovers(rig)["containers"] != []  # the step runs
    return proc


def test_daemon_stop_cancels_builds_in_progress(docker_rig: DockerRig, tmp_path: Path) -> None:
    proc = _start_sleeping_build(docker_rig, tmp_path)
    try:
        assert docker_rig.daemon.stop() == 0
        assert proc.wait(60) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _leftovers(docker_rig) == _nothing_left(docker_rig)


def test_restart_after_a_kill_mid_build_removes_its_leftovers(docker_rig: DockerRig,
                                                               tmp_path: Path) -> None:
    proc = _start_sleeping_build(docker_rig, tmp_path)
    try:
        docker_rig.daemon.stop(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert _leftovers(docker_rig)["mounts"] != []  # the killed daemon's build is still there
    docker_rig.daemon = start_crid(tmp_path, config=tmp_path / "crid.toml")
    # The Docker socket is bound once the leftovers are gone (the CRI one may answer first).
    _wait_until(lambda: docker_rig.cli("version", check=False).returncode == 0,
                lambda: "the restarted daemon's Docker socket does not answer")
    assert _leftovers(docker_rig) == _nothing_left(docker_rig)
    assert docker_rig.cli("ps", "-aq").stdout == ""


def test_docker_py_build_streams_and_tags(docker_rig: DockerRig, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nARG WHO\nRUN echo \"built for $WHO\" > /who\n"
                   "CMD [\"cat\", \"/who\"]\n")
    client = docker_rig.client()
    try:
        image, stream = client.images.build(path=str(ctx), tag="pybuilt:1",
                                            buildargs={"WHO": "py"}, rm=True)
        logs = list(stream)
        lines = [entry.get("stream", "") for entry in logs]
        assert any(line.startswith("Step 3/4 : RUN") for line in lines)
        assert image.tags == [f"{docker_rig.registry.netloc}/pybuilt:1"]
        assert client.containers.run("pybuilt:1", remove=True) == b"built for py\n"
        aux = [entry["aux"]["ID"] for entry in logs if "aux" in entry]
        assert aux == [image.id]
    finally:
        client.close()


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.addfile(*_dockerfile())
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _dockerfile() -> tuple[tarfile.TarInfo, io.BytesIO]:
    data = b"FROM busybox\nCOPY . /x/\n"
    info = tarfile.TarInfo("Dockerfile")
    info.size = len(data)
    return info, io.BytesIO(data)


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "",
            data: bytes = b"evil") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize(("member", "message"), [
    (_member("../escape.txt"), "points outside the context"),
    (_member("/abs.txt"), "is an absolute path"),
    (_member("link", tarfile.SYMTYPE, "/etc/passwd"), "points outside the context"),
    (_member("link", tarfile.SYMTYPE, "../../outside"), "points outside the context"),
    (_member("hard", tarfile.LNKTYPE, "../outside"), "points outside the context"),
    (_member("dev", tarfile.CHRTYPE), "is a device"),
])
def test_hostile_context_is_refused_with_400(docker_rig: DockerRig, tmp_path: Path,
                                             member: tuple[tarfile.TarInfo, bytes | None],
                                             message: str) -> None:
    import docker

    client = docker_rig.client()
    try:
        with pytest.raises(docker.errors.APIError) as err:
            list(client.api.build(fileobj=io.BytesIO(_tar(member)), custom_context=True,
                                  decode=True))
    finally:
        client.close()
    assert err.value.status_code == 400
    assert message in str(err.value.explanation)
    assert not (tmp_path.parent / "escape.txt").exists() and not Path("/abs.txt").exists()
    assert _leftovers(docker_rig) == _nothing_left(docker_rig)
    assert docker_rig.cli("version").returncode == 0  # still serving


def test_context_declared_too_large_is_refused_unread(docker_rig: DockerRig) -> None:
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(docker_rig.socket))
        s.sendall(b"POST /v1.41/build HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\n"
                  b"Content-Length: 10737418240000\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"larger than the limit" in body
    assert _leftovers(docker_rig) == _nothing_left(docker_rig)


def test_buildkit_and_remote_contexts_are_refused(docker_rig: DockerRig) -> None:
    import docker

    client = docker_rig.client()
    try:
        with pytest.raises(docker.errors.APIError) as err:
            client.api._result(client.api._post(client.api._url("/build"),
                                                params={"version": "2"}, data=b""))
        assert err.value.status_code == 400 and "DOCKER_BUILDKIT=0" in err.value.explanation
        with pytest.raises(docker.errors.APIError) as err:
            list(client.api.build(path="https://example.invalid/repo.git"))
        assert err.value.status_code == 501
    finally:
        client.close()


def _wait_until(condition, describe, limit: float = 60) -> None:  # noqa: ANN001
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(describe())
        time.sleep(0.1)
