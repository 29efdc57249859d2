"""Slice (c): containers through the docker CLI and docker-py."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest

from crid.api import api_pb2 as pb
from tests.integration.docker.conftest import DockerRig, until


@pytest.fixture
def rig(docker_rig: DockerRig) -> DockerRig:
    docker_rig.cli("pull", "-q", "busybox")
    return docker_rig


def test_run_rm_echo_prints_and_exits_0(docker_rig: DockerRig) -> None:
    out = docker_rig.cli("run", "--rm", "busybox", "echo", "hi")
    assert out.stdout == "hi\n"
    assert docker_rig.cli("ps", "-aq").stdout == ""


def test_run_exit_code_and_stderr_apart(rig: DockerRig) -> None:
    proc = rig.cli("run", "--name", "fails", "busybox", "sh", "-c",
                          "echo out; echo err >&2; exit 3", check=False)
    assert proc.returncode == 3
    assert proc.stdout == "out\n" and proc.stderr == "err\n"
    state = json.loads(rig.cli("inspect", "fails").stdout)[0]["State"]
    assert (state["Status"], state["Running"], state["ExitCode"]) == ("exited", False, 3)
    assert state["FinishedAt"] >= state["StartedAt"] > "2000"
    logs = rig.cli("logs", "fails")
    assert (logs.stdout, logs.stderr) == ("out\n", "err\n")
    rig.cli("rm", "fails")


def test_detached_run_logs_stop(rig: DockerRig) -> None:
    cid = rig.cli("run", "-d", "--name", "web", "-l", "app=crt", "-e", "GREETING=hello",
                         "busybox", "sh", "-c",
                         "trap 'echo bye; exit 0' TERM; echo $GREETING; "
                         "while true; do sleep 0.1; done").stdout.strip()
    assert len(cid) == 64
    ps = rig.cli("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Status}}").stdout
    assert ps.startswith(f"{cid} web Up")
    assert rig.cli("ps", "-q", "--filter", "label=app=crt").stdout.strip() == cid[:12]
    assert rig.cli("ps", "-q", "--filter", "label=app=other").stdout == ""
    until(lambda: rig.cli("logs", "web").stdout == "hello\n")
    info = json.loads(rig.cli("inspect", "web").stdout)[0]
    assert info["State"]["Running"] and info["State"]["Pid"] > 0
    assert info["NetworkSettings"]["IPAddress"].startswith("10.217.")
    assert "GREETING=hello" in info["Config"]["Env"]
    assert info["Config"]["Labels"] == {"app": "crt"}
    rig.cli("stop", "web")
    assert rig.cli("logs", "web").stdout == "hello\nbye\n"
    info = json.loads(rig.cli("inspect", "web").stdout)[0]
    assert (info["State"]["Status"], info["State"]["ExitCode"]) == ("exited", 0)
    assert rig.cli("ps", "-q").stdout == ""
    assert rig.cli("ps", "-aq").stdout.strip() == cid[:12]
    ts = rig.cli("logs", "-t", "--tail", "1", "web").stdout
    assert ts.endswith(" bye\n") and ts[:4] > "2000"
    rig.cli("start", "web")
    assert json.loads(rig.cli("inspect", "web").stdout)[0]["State"]["Running"]
    refused = rig.cli("rm", "web", check=False)
    assert refused.returncode != 0 and "cannot remove a running container" in refused.stderr
    rig.cli("rm", "-f", "web")
    assert rig.cli("ps", "-aq").stdout == ""


def test_cri_never_lists_docker_containers(rig: DockerRig) -> None:
    rig.cli("run", "-d", "--name", "hidden", "busybox", "sleep", "60")
    rt = rig.daemon.runtime
    assert list(rt.ListPodSandbox(pb.ListPodSandboxRequest()).items) == []
    assert list(rt.ListContainers(pb.ListContainersRequest()).containers) == []
    rig.cli("rm", "-f", "hidden")


def test_published_port_answers(rig: DockerRig) -> None:
    rig.cli("run", "-d", "--name", "http", "-p", "127.0.0.1:18931:80", "busybox",
                   "sh", "-c", "echo served > /index.html; httpd -f -p 80 -h /")
    body = until(lambda: _get("http://127.0.0.1:18931/index.html"))
    assert body == b"served\n"
    port = rig.cli("inspect", "-f", "{{json .NetworkSettings.Ports}}", "http").stdout
    assert json.loads(port)["80/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": "18931"}]
    rig.cli("rm", "-f", "http")


def test_docker_py_run_wait_logs_remove(rig: DockerRig, tmp_path) -> None:  # noqa: ANN001
    shared = tmp_path / "shared"  # readable by uid 1234 (tmp_path is 0700)
    shared.mkdir(mode=0o755)
    (shared / "data").write_text("from the host\n")
    client = rig.client()
    try:
        out = client.containers.run("busybox", ["sh", "-c", "cat /mnt/data; id -u; pwd"],
                                    volumes={str(shared): {"bind": "/mnt", "mode": "ro"}},
                                    working_dir="/tmp", user="1234", remove=True)
        assert out == b"from the host\n1234\n/tmp\n"
        c = client.containers.create("busybox", ["sh", "-c", "exit 7"], name="py")
        c.start()
        assert c.wait()["StatusCode"] == 7
        c.reload()
        assert c.status == "exited"
        c.remove()
        assert client.containers.list(all=True) == []
    finally:
        client.close()


def test_name_conflict_is_409(rig: DockerRig) -> None:
    rig.cli("create", "--name", "twin", "busybox", "true")
    again = rig.cli("create", "--name", "twin", "busybox", "true", check=False)
    assert again.returncode != 0 and 'name "/twin" is already in use' in again.stderr
    rig.cli("rm", "twin")


def _get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.read()
    except OSError:
        return None



def test_ps_filters(rig: DockerRig) -> None:
    rig.cli("run", "--name", "three", "busybox", "sh", "-c", "exit 3", check=False)
    rig.cli("create", "--name", "fresh", "busybox", "true")
    up = rig.cli("run", "-d", "--name", "up", "busybox", "sleep", "60").stdout.strip()

    def names(*args: str) -> list[str]:
        return rig.cli("ps", "--format", "{{.Names}}", *args).stdout.split()
    assert names() == ["up"]
    assert names("-a") == ["up", "fresh", "three"]
    assert names("-a", "--filter", "status=exited") == ["three"]
    assert names("-a", "--filter", "status=created") == ["fresh"]
    assert names("-a", "--filter", "exited=3") == ["three"]
    assert names("-a", "--filter", "name=thr") == ["three"]
    assert names("-a", "--filter", f"id={up[:10]}") == ["up"]
    assert names("-a", "--filter", "ancestor=busybox") == ["up", "fresh", "three"]
    assert names("-a", "-n", "1") == ["up"]
    bad = rig.cli("ps", "--filter", "colour=red", check=False)
    assert bad.returncode != 0 and "invalid filter 'colour'" in bad.stderr
    rig.cli("rm", "-f", "three", "fresh", "up")


def test_kill_restart_wait(rig: DockerRig) -> None:
    rig.cli("run", "-d", "--name", "k", "busybox", "sh", "-c",
            "trap 'echo got-usr1' USR1; echo started; while true; do sleep 0.1; done")
    until(lambda: "started" in rig.cli("logs", "k").stdout)
    rig.cli("kill", "--signal", "USR1", "k")
    until(lambda: "got-usr1" in rig.cli("logs", "k").stdout)
    assert json.loads(rig.cli("inspect", "k").stdout)[0]["State"]["Running"]
    first_pid = json.loads(rig.cli("inspect", "k").stdout)[0]["State"]["Pid"]
    rig.cli("restart", "-t", "1", "k")
    info = json.loads(rig.cli("inspect", "k").stdout)[0]
    assert info["State"]["Running"] and info["State"]["Pid"] != first_pid
    until(lambda: rig.cli("logs", "k").stdout.count("started") == 2)
    rig.cli("kill", "k")
    assert rig.cli("wait", "k").stdout == "137\n"
    again = rig.cli("kill", "k", check=False)
    assert again.returncode != 0 and "is not running" in again.stderr
    bad = rig.cli("kill", "--signal", "NOPE", "k", check=False)
    assert bad.returncode != 0
    rig.cli("rm", "k")
    missing = rig.cli("wait", "k", check=False)
    assert missing.returncode != 0 and "No such container: k" in missing.stderr


def test_logs_follow_tail_and_streams(rig: DockerRig) -> None:
    rig.cli("run", "-d", "--name", "talker", "busybox", "sh", "-c",
            "for i in 1 2 3; do echo out$i; echo err$i >&2; done; sleep 1; echo last")
    followed = rig.cli("logs", "-f", "talker")  # returns once the container exits
    assert followed.stdout == "out1\nout2\nout3\nlast\n"
    assert followed.stderr == "err1\nerr2\nerr3\n"
    tail = rig.cli("logs", "--tail", "2", "talker")
    assert (tail.stdout, tail.stderr) == ("last\n", "err3\n")
    client = rig.client()
    try:
        c = client.containers.get("talker")
        assert c.logs(stdout=False, stderr=True) == b"err1\nerr2\nerr3\n"
        assert c.logs(stdout=True, stderr=False, tail=1) == b"last\n"
        stamped = c.logs(timestamps=True).decode().splitlines()
        assert len(stamped) == 7 and all(line[:4] > "2000" for line in stamped)
    finally:
        client.close()
    rig.cli("rm", "talker")


def test_stop_of_a_stopped_container_and_start_of_a_started(rig: DockerRig) -> None:
    rig.cli("run", "-d", "--name", "s", "busybox", "sleep", "60")
    rig.cli("start", "s")  # 304: the CLI says nothing and exits 0
    rig.cli("stop", "-t", "0", "s")
    rig.cli("stop", "s")
    state = json.loads(rig.cli("inspect", "s").stdout)[0]["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)
    rig.cli("rm", "s")


def test_network_modes(rig: DockerRig) -> None:
    none = rig.cli("run", "--rm", "--network", "none", "busybox", "sh", "-c",
                   "ls /sys/class/net; ping -c1 -W1 127.0.0.1 >/dev/null && echo lo-ok")
    assert none.stdout == "lo\nlo-ok\n"
    host = rig.cli("run", "--rm", "--network", "host", "busybox", "hostname")
    assert host.stdout.strip() == socket.gethostname()
    bridged = rig.cli("run", "--rm", "busybox", "sh", "-c", "ls /sys/class/net")
    assert bridged.stdout.split() == ["eth0", "lo"]
    missing = rig.cli("run", "--rm", "--network", "nosuchnet", "busybox", "true", check=False)
    assert missing.returncode != 0 and "network nosuchnet not found" in missing.stderr
    clash = rig.cli("run", "--rm", "--network", "none", "-p", "18934:80", "busybox", "true",
                    check=False)
    assert clash.returncode != 0 and "conflicting options" in clash.stderr
    assert rig.cli("ps", "-aq").stdout == ""
