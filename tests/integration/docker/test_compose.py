"""Debian's docker-compose (1.29, on docker-py) on crid, unchanged: a two-service project
(a busybox httpd serving a named volume, and a client that fills the volume and fetches the
page by service name over the project's default network); ps, logs, exec, and `down -v`
leaving nothing behind (containers, network bridge and NAT table, volume)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.docker.conftest import DockerRig, until

COMPOSE = "/usr/bin/docker-compose"  # Debian's docker-compose (tools/install-deps.sh)
PROJECT = """\
version: "3.8"
services:
  web:
    image: busybox
    command: ["busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
    volumes:
      - site:/www
  client:
    image: busybox
    depends_on: [web]
    environment:
      GREETING: hello-from-the-volume
    command:
      - sh
      - -c
      - >-
        echo $$GREETING > /www/index.html;
        until wget -q -O - http://web:8080/index.html; do sleep 0.2; done;
        exec sleep 600
    volumes:
      - site:/www
volumes:
  site: {}
"""


@pytest.fixture
def rig(docker_rig: DockerRig) -> DockerRig:
    assert shutil.which(COMPOSE), "tools/install-deps.sh installs docker-compose"
    docker_rig.cli("pull", "-q", "busybox")
    return docker_rig


def _compose(rig: DockerRig, project: Path, *args: str, check: bool = True
             ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([COMPOSE, "--no-ansi", "-p", "crt", "-f", str(project), *args],
                          env=rig.env(), capture_output=True, text=True, timeout=300,
                          cwd=project.parent)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker-compose {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}\n--- crid log tail:\n"
                             f"{rig.daemon.log()[-4000:]}")
    return proc


def _bridges() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "type", "bridge"], capture_output=True,
                         text=True).stdout
    return {line.split(":")[1].strip() for line in out.splitlines()}


def test_two_service_project_up_ps_logs_exec_down(rig: DockerRig, tmp_path: Path) -> None:
    project = tmp_path / "proj" / "docker-compose.yml"
    project.parent.mkdir()
    project.write_text(PROJECT)
    _compose(rig, project, "up", "-d")
    net = rig.cli("network", "inspect", "-f", "{{.Id}}", "crt_default").stdout.strip()
    bridge = f"crb-{net[:11]}"
    assert bridge in _bridges()
    assert rig.cli("volume", "ls", "-q").stdout.split() == ["crt_site"]
    ps = _compose(rig, project, "ps").stdout
    assert "crt_web_1" in ps and "crt_client_1" in ps and ps.count(" Up ") == 2, ps
    until(lambda: "hello-from-the-volume" in _compose(rig, project, "logs", "client").stdout)
    out = _compose(rig, project, "exec", "-T", "client", "wget", "-q", "-O", "-",
                   "http://web:8080/index.html").stdout
    assert out == "hello-from-the-volume\n"
    out = _compose(rig, project, "exec", "-T", "web", "cat", "/www/index.html").stdout
    assert out == "hello-from-the-volume\n"
    _compose(rig, project, "down", "-v")
    assert rig.cli("ps", "-aq").stdout == ""
    assert rig.cli("volume", "ls", "-q").stdout == ""
    assert rig.cli("network", "ls", "-q", "--filter", "type=custom").stdout == ""
    assert bridge not in _bridges()
    nft = subprocess.run(["nft", "list", "table", "inet", f"crid_n{net[:12]}"],
                         capture_output=True)
    assert nft.returncode != 0
    assert list((rig.daemon.root / "networks").iterdir()) == []
    assert list((rig.daemon.root / "volumes").iterdir()) == []
