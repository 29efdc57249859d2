"""Slice (d): pause/unpause, top, stats, rename, port, events, restart policies, prune."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import pytest

from tests.integration.docker.conftest import DockerRig, until
from tests.rig.daemon import start_crid


@pytest.fixture
def rig(docker_rig: DockerRig) -> DockerRig:
    docker_rig.cli("pull", "-q", "busybox")
    return docker_rig


def _state(rig: DockerRig, name: str) -> dict[str, Any]:
    return json.loads(rig.cli("inspect", name).stdout)[0]["State"]


def test_pause_unpause(rig: DockerRig) -> None:
    rig.cli("run", "-d", "--name", "p", "busybox", "sh", "-c",
            "while true; do date +%s%N > /tmp/beat; sleep 0.05; done")
    rig.cli("pause", "p")
    state = _state(rig, "p")
    assert (state["Status"], state["Paused"], state["Running"]) == ("paused", True, True)
    assert rig.cli("ps", "--format", "{{.Status}}").stdout.strip().endswith("(Paused)")
    assert rig.cli("ps", "-q", "--filter", "status=paused").stdout.strip() != ""
    again = rig.cli("pause", "p", check=False)
    assert again.returncode != 0 and "is already paused" in again.stderr
    rig.cli("unpause", "p")
    assert _state(rig, "p")["Status"] == "running"
    beats = {rig.cli("exec", "p", "cat", "/tmp/beat").stdout for _ in range(2)}
    until(lambda: rig.cli("exec", "p", "cat", "/tmp/beat").stdout not in beats)
    not_paused = rig.cli("unpause", "p", check=False)
    assert not_paused.returncode != 0 and "is not paused" in not_paused.stderr
    rig.cli("pause", "p")
    rig.cli("rm", "-f", "p")  # a frozen container is thawed to be killed
    assert rig.cli("ps", "-aq").stdout == ""


def test_top_lists_the_container_processes(rig: DockerRig) -> None:
    rig.cli("run", "-d", "--name", "t", "busybox", "sh", "-c", "sleep 1234 & sleep 4321")
    rows = until(lambda: [ln for ln in rig.cli("top", "t").stdout.splitlines()
                           if "sleep" in ln and len(ln.split()) > 1] or None)
    commands = sorted(r.split(None, 7)[-1] for r in rows)
    assert commands == ["sleep 1234", "sleep 4321"]
    custom = rig.cli("top", "t", "-o", "pid,comm").stdout.splitlines()
    assert custom[0].split() == ["PID", "COMMAND"]
    bad = rig.cli("top", "t", "-o", "comm", check=False)
    assert bad.returncode != 0 and "Couldn't find PID field" in bad.stderr
    rig.cli("rm", "-f", "t")


def test_stats_one_shot_and_stream(rig: DockerRig) -> None:
    rig.cli("run", "-d", "--name", "busy", "-m", "64m", "busybox", "sh", "-c",
            "dd if=/dev/zero of=/dev/null bs=1M count=100000000")
    out = rig.cli("stats", "--no-stream", "--format",
                  "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}", "busy").stdout.split()
    assert out[0] == "busy" and out[1].endswith("%") and out[-1] == "1"
    assert float(out[1].rstrip("%")) > 0  # dd spins on a CPU
    assert out[4] == "64MiB"
    client = rig.client()
    try:
        c = client.containers.get("busy")
        samples = c.stats(stream=True, decode=True)
        first, second = next(samples), next(samples)
        samples.close()
        assert second["precpu_stats"]["cpu_usage"]["total_usage"] == \
            first["cpu_stats"]["cpu_usage"]["total_usage"]
        assert second["cpu_stats"]["cpu_usage"]["total_usage"] > \
            first["cpu_stats"]["cpu_usage"]["total_usage"]
        assert second["memory_stats"]["limit"] == 64 * 1024 * 1024
        assert "eth0" in second["networks"]
        one = c.stats(stream=False, one_shot=True)
        assert one["name"] == "/busy" and one["pids_stats"]["current"] == 1
    finally:
        client.close()
    rig.cli("rm", "-f", "busy")


def test_rename_keeps_id_and_frees_the_old_name(rig: DockerRig) -> None:
    cid = rig.cli("run", "-d", "--name", "before", "busybox", "sleep", "60").stdout.strip()
    rig.cli("create", "--name", "other", "busybox", "true")
    taken = rig.cli("rename", "before", "other", check=False)
    assert taken.returncode != 0 and "is already in use" in taken.stderr
    rig.cli("rename", "before", "after")
    info = json.loads(rig.cli("inspect", "after").stdout)[0]
    assert (info["Id"], info["Name"], info["State"]["Running"]) == (cid, "/after", True)
    assert rig.cli("inspect", "before", check=False).returncode != 0
    rig.cli("create", "--name", "before", "busybox", "true")  # the old name is free again
    bad = rig.cli("rename", "after", "no/slashes", check=False)
    assert bad.returncode != 0 and "Invalid container name" in bad.stderr
    rig.cli("rm", "-f", "after", "before", "other")


def test_port_lists_published_ports(rig: DockerRig) -> None:
    rig.cli("run", "-d", "--name", "ports", "-p", "127.0.0.1:18932:80", "-p", "18933:53/udp",
            "busybox", "sleep", "60")
    out = rig.cli("port", "ports").stdout.splitlines()
    assert sorted(out) == ["53/udp -> 0.0.0.0:18933", "80/tcp -> 127.0.0.1:18932"]
    assert rig.cli("port", "ports", "80").stdout == "127.0.0.1:18932\n"
    rig.cli("rm", "-f", "ports")


def test_events_stream_and_since(rig: DockerRig) -> None:
    start = time.time()
    client = rig.client()
    seen: list[dict[str, Any]] = []
    try:
        stream = client.events(decode=True, filters={"type": "container"})
        done = threading.Event()

        def read() -> None:
            for ev in stream:
                seen.append(ev)
                if ev["Action"] == "destroy":
                    done.set()
                    return
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        time.sleep(0.5)  # let the stream open before the events happen
        rig.cli("run", "--name", "ev", "-l", "team=a", "busybox", "sh", "-c", "exit 2",
                check=False)
        rig.cli("rm", "ev")
        assert done.wait(30), seen
        stream.close()
    finally:
        client.close()
    actions = [e["Action"] for e in seen]
    assert actions[0] == "create" and actions[-1] == "destroy"
    assert actions.index("start") < actions.index("die") < actions.index("destroy")
    die = next(e for e in seen if e["Action"] == "die")
    assert die["Actor"]["Attributes"]["exitCode"] == "2"
    assert die["Actor"]["Attributes"]["name"] == "ev"
    assert die["Actor"]["Attributes"]["team"] == "a"
    out = rig.cli("events", "--since", str(int(start)), "--until", str(int(time.time()) + 1),
                  "--filter", "event=die", "--format", "{{.Actor.Attributes.name}}").stdout
    assert out == "ev\n"
    images = rig.cli("events", "--since", str(int(start) - 60), "--until",
                     str(int(time.time()) + 1), "--filter", "type=image",
                     "--format", "{{.Action}}").stdout.split()
    assert "pull" in images


def test_restart_policies(rig: DockerRig) -> None:
    rig.cli("run", "-d", "--name", "always", "--restart", "always", "busybox", "sh", "-c",
            "echo run; sleep 0.2; exit 1")
    rig.cli("run", "-d", "--name", "twice", "--restart", "on-failure:2", "busybox", "sh",
            "-c", "echo run; exit 3")
    rig.cli("run", "-d", "--name", "fine", "--restart", "on-failure", "busybox", "true")
    until(lambda: rig.cli("logs", "always").stdout.count("run") >= 3)
    until(lambda: rig.cli("logs", "twice").stdout.count("run") == 3 and
           not _state(rig, "twice")["Running"])
    assert json.loads(rig.cli("inspect", "twice").stdout)[0]["RestartCount"] == 2
    assert _state(rig, "twice")["ExitCode"] == 3
    assert rig.cli("logs", "fine").stdout == ""
    assert json.loads(rig.cli("inspect", "fine").stdout)[0]["RestartCount"] == 0
    rig.cli("stop", "-t", "1", "always")  # a client's stop is final
    count = rig.cli("logs", "always").stdout.count("run")
    time.sleep(1)
    assert rig.cli("logs", "always").stdout.count("run") == count
    assert not _state(rig, "always")["Running"]
    rig.cli("rm", "-f", "always", "twice", "fine")


def test_restart_policies_after_a_daemon_restart(rig: DockerRig) -> None:
    """Running containers survive the daemon; those that exited while it was down get their
    policy when it is back (`always` even after a client's stop, as on Docker's start)."""
    rig.cli("run", "-d", "--name", "survivor", "busybox", "sleep", "600")
    pid = _state(rig, "survivor")["Pid"]
    rig.cli("run", "-d", "--name", "stopped-always", "--restart", "always", "busybox",
            "sleep", "600")
    rig.cli("stop", "-t", "0", "stopped-always")
    rig.cli("run", "-d", "--name", "stopped-unless", "--restart", "unless-stopped", "busybox",
            "sleep", "600")
    rig.cli("stop", "-t", "0", "stopped-unless")
    rig.cli("run", "-d", "--name", "dies-while-down", "--restart", "on-failure", "busybox",
            "sh", "-c", "test -e /tmp/again && exec sleep 600; touch /tmp/again; sleep 3; "
            "exit 1")
    doomed = _state(rig, "dies-while-down")["Pid"]
    config = rig.daemon.root.parent / "crid.toml"
    assert rig.daemon.stop() == 0
    until(lambda: not os.path.exists(f"/proc/{doomed}"))  # it exits while no daemon watches
    rig.daemon = start_crid(rig.daemon.root.parent, config=config)
    assert _state(rig, "survivor")["Pid"] == pid
    until(lambda: _state(rig, "stopped-always")["Running"])
    until(lambda: _state(rig, "dies-while-down")["Running"])
    assert not _state(rig, "stopped-unless")["Running"]
    rig.cli("rm", "-f", "survivor", "stopped-always", "stopped-unless", "dies-while-down")


def test_container_prune(rig: DockerRig) -> None:
    rig.cli("create", "--name", "idle", "busybox", "true")
    rig.cli("run", "--name", "done", "busybox", "true")
    rig.cli("run", "-d", "--name", "live", "busybox", "sleep", "60")
    out = rig.cli("container", "prune", "-f").stdout
    assert "Total reclaimed space" in out
    assert rig.cli("ps", "-a", "--format", "{{.Names}}").stdout == "live\n"
    rig.cli("rm", "-f", "live")
    assert list((rig.daemon.root / "docker" / "logs").iterdir()) == []
