"""Errors that reach people: failed RPCs logged once with what they were about, start-up
errors as one line, `--listen unix://PATH`, and a quiet Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import grpc
import pytest

from crid.api import api_pb2 as pb
from tests.rig.daemon import TOP, CridProcess, crid_command, remove_test_network, start_crid


def _failures(daemon: CridProcess, method: str) -> list[dict]:
    lines = [json.loads(x) for x in daemon.log().splitlines() if x.startswith("{")]
    return [x for x in lines if x.get("event") == "rpc failed" and x.get("method") == method]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens


def test_failed_pull_is_logged_with_image_and_reason(crid: CridProcess) -> None:
    image = f"127.0.0.1:{_closed_port()}/crt/nothing:1.0"
    with pytest.raises(grpc.RpcError) as e:
        crid.images.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=image)))
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    (line,) = _failures(crid, "PullImage")
    assert (line["level"], line["status"], line["image"]) == ("error", "UNAVAILABLE", image)
    assert line["error"] == e.value.details()
    assert "refused" in line["error"].lower()
    assert "request_id" in line and line["duration_ms"] > 0


def test_client_error_is_a_warning_with_the_ids(crid: CridProcess) -> None:
    with pytest.raises(grpc.RpcError) as e:
        crid.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id="crt-missing"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    (line,) = _failures(crid, "ContainerStatus")
    assert (line["level"], line["status"], line["container_id"]) == \
        ("warning", "NOT_FOUND", "crt-missing")
    assert line["error"] == e.value.details()


def test_failed_create_names_pod_and_container(crid: CridProcess) -> None:
    req = pb.CreateContainerRequest(
        pod_sandbox_id="crt-nopod",
        config=pb.ContainerConfig(metadata=pb.ContainerMetadata(name="web"),
                                  image=pb.ImageSpec(image="crt/busybox:1")),
        sandbox_config=pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name="p", namespace="ns", uid="u")))
    with pytest.raises(grpc.RpcError) as e:
        crid.runtime.CreateContainer(req)
    (line,) = _failures(crid, "CreateContainer")
    assert line["status"] == e.value.code().name
    assert {k: line[k] for k in ("pod_id", "pod", "container", "image")} == \
        {"pod_id": "crt-nopod", "pod": "ns/p", "container": "web", "image": "crt/busybox:1"}


def test_successful_rpcs_log_no_failure(crid: CridProcess) -> None:
    crid.runtime.Version(pb.VersionRequest())
    assert _failures(crid, "Version") == []


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(crid_command(*args), capture_output=True, text=True, cwd=cwd,
                          env=dict(os.environ, PYTHONPATH=str(TOP)), timeout=60)


@pytest.mark.parametrize("flag", ["--root", "--run-root"])
def test_unusable_directory_is_one_line_exit_1(tmp_path: Path, flag: str) -> None:
    other = "--run-root" if flag == "--root" else "--root"
    res = _run(flag, "/proc/crt-nope", other, str(tmp_path / "x"),
               "--listen", str(tmp_path / "s.sock"), "--log-format", "json", cwd=tmp_path)
    assert res.returncode == 1
    (line,) = [json.loads(x) for x in res.stderr.splitlines()]
    assert line["event"] == "cannot start" and "/proc/crt-nope" in line["error"]
    assert "Traceback" not in res.stderr + res.stdout


@pytest.mark.parametrize("listen", ["tcp://127.0.0.1:1", "relative.sock", "unix://relative"])
def test_listen_that_is_not_an_absolute_unix_socket_exits_2(tmp_path: Path, listen: str) -> None:
    res = _run("--listen", listen, "--root", str(tmp_path / "r"), cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.startswith("crid: configuration error: command line: listen:")
    assert "Traceback" not in res.stderr and list(tmp_path.iterdir()) == []


def test_listen_takes_a_unix_url(tmp_path: Path) -> None:
    sock = tmp_path / "url.sock"
    daemon = start_crid(tmp_path, listen=f"unix://{sock}")  # the rig waits on the path
    try:
        assert daemon.socket == sock
        assert not (TOP / "unix:").exists() and not (tmp_path / "unix:").exists()
    finally:
        assert daemon.stop() == 0
    assert not sock.exists()


def test_ctrl_c_stops_everything_quietly(tmp_path: Path) -> None:
    daemon = start_crid(tmp_path, new_session=True)
    zygote = _children_named(daemon.proc.pid, "crid-zygote")
    assert len(zygote) == 1
    os.killpg(daemon.proc.pid, signal.SIGINT)  # what a terminal sends its foreground group
    assert daemon.proc.wait(30) == 0
    daemon.stop()
    log = daemon.log()
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log
    assert '"stopped"' in log
    assert not Path(f"/proc/{zygote[0]}").exists()


def _children_named(pid: int, comm: str) -> list[int]:
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(k) for k in kids
            if Path(f"/proc/{k}/comm").read_text(errors="replace").strip() == comm]


def _marked(run_root: Path) -> list[int]:
    """Live processes carrying this run root's mark (crid.children)."""
    mark = f"CRID_OWNER={run_root}".encode()
    found = []
    for name in os.listdir("/proc"):
        try:
            env = Path(f"/proc/{name}/environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if name.isdigit() and mark in env:
            found.append(int(name))
    return found


def test_a_start_failing_late_stops_everything_started_before(tmp_path: Path) -> None:
    """The Docker socket is the last thing start-up opens: by then the zygote, the exit
    watcher, the streaming server and the CRI socket exist, and all must go again."""
    busy = tmp_path / "busy.sock"
    holder = socket.socket(socket.AF_UNIX)
    holder.bind(str(busy))
    holder.listen()
    cfg = tmp_path / "crid.toml"
    bridge = f"crtf{os.getpid() % 10000}"
    cfg.write_text(f'[network]\nmode = "builtin"\nbridge = "{bridge}"\n'
                   f'pod_cidr = "10.217.{os.getpid() % 250}.0/24"\n'
                   f'[docker]\nlisten = "{busy}"\n')
    try:
        daemon = start_crid(tmp_path, config=cfg, wait=False)
        assert daemon.proc.wait(60) != 0
    finally:
        holder.close()
    assert f"socket {busy} is served by another process" in daemon.log()
    assert _marked(daemon.run_root) == []  # zygote and everything it forked: gone
    assert not daemon.socket.exists()
    try:
        start_crid(tmp_path, config=cfg).stop()  # the root lock was released
    finally:
        remove_test_network(bridge)
