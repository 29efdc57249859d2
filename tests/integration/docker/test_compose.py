"""Debian's docker-compose (1.29, on docker-py) on crid, unchanged: a two-service project
(a busybox httpd serving a named volume, and a client that fills the volume and fetches the
page by service name over the project's default network); ps, logs, exec, and `down -v`
leaving nothing behind (containers, network bridge and NAT table, volume); and a service
built from a Dockerfile, publishing a port, on two project networks."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import urllib.request
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


def _compose(rig: DockerRig, project: Path, *args: str, check: bool = True,
             extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([COMPOSE, "--no-ansi", "-p", "crt", "-f", str(project), *args],
                          env={**rig.env(), **(extra_env or {})}, capture_output=True,
                          text=True, timeout=300, cwd=project.parent)
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


BUILT_PROJECT = """\
version: "3.8"
services:
  api:
    build: ./api
    ports: ["{port}:8080"]
    networks: [front, back]
  probe:
    image: busybox
    depends_on: [api]
    command: ["sleep", "600"]
    networks: [back]
networks:
  front: {{}}
  back: {{}}
"""
API_DOCKERFILE = """\
FROM busybox
RUN mkdir /srv && echo built-by-compose > /srv/built
CMD ["busybox", "httpd", "-f", "-p", "8080", "-h", "/srv"]
"""


def test_built_service_with_ports_on_two_networks(rig: DockerRig, tmp_path: Path) -> None:
    port = 20000 + secrets.randbelow(20000)
    project = tmp_path / "proj" / "docker-compose.yml"
    (project.parent / "api").mkdir(parents=True)
    (project.parent / "api" / "Dockerfile").write_text(API_DOCKERFILE)
    project.write_text(BUILT_PROJECT.format(port=port))
    env_build = {"DOCKER_BUILDKIT": "0", "COMPOSE_DOCKER_CLI_BUILD": "0"}
    _compose(rig, project, "up", "-d", extra_env=env_build)
    info = json.loads(rig.cli("inspect", "crt_api_1").stdout)[0]
    nets = info["NetworkSettings"]["Networks"]
    assert sorted(nets) == ["crt_back", "crt_front"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/built", timeout=10) as resp:
        assert resp.read() == b"built-by-compose\n"
    out = _compose(rig, project, "exec", "-T", "probe", "wget", "-q", "-O", "-",
                   "http://api:8080/built").stdout
    assert out == "built-by-compose\n"
    ids = [rig.cli("network", "inspect", "-f", "{{.Id}}", n).stdout.strip()
           for n in ("crt_front", "crt_back")]
    _compose(rig, project, "down", "-v", "--rmi", "local")
    assert rig.cli("ps", "-aq").stdout == ""
    assert rig.cli("network", "ls", "-q", "--filter", "type=custom").stdout == ""
    assert not {f"crb-{i[:11]}" for i in ids} & _bridges()
    assert rig.cli("images", "-q", "crt_api").stdout == ""  # --rmi local: the built image
