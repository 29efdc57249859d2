"""Published ports: `-p` with a fixed, open or ranged host port, `-P` over exposed ports,
reached over HTTP from the host, shown by inspect, `ps` and `docker port`, and their NAT
rules gone with the container."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.integration.docker.conftest import DockerRig, until

HTTPD = ["sh", "-c", "mkdir /www && echo served > /www/index.html && httpd -f -p 80 -h /www"]


@pytest.fixture
def rig(docker_rig: DockerRig) -> DockerRig:
    docker_rig.cli("pull", "-q", "busybox")
    return docker_rig


def _get(port: int) -> bytes | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2) as r:
            return r.read()
    except OSError:
        return None


def _nat_rules(tmp_path: Path) -> str:
    bridge = re.search(r'bridge = "([^"]+)"', (tmp_path / "crid.toml").read_text()).group(1)
    return subprocess.run(["nft", "list", "table", "inet", f"crid_{bridge}"],
                          capture_output=True, text=True).stdout


def test_publish_all_and_open_ports_get_free_host_ports(rig: DockerRig, tmp_path: Path) -> None:
    rig.cli("run", "-d", "--name", "pa", "-P", "--expose", "80", "busybox", *HTTPD)
    line = rig.cli("port", "pa", "80").stdout.splitlines()[0]
    host_ip, _, port = line.rpartition(":")
    assert host_ip == "0.0.0.0" and int(port) >= 1024
    assert until(lambda: _get(int(port))) == b"served\n"
    rig.cli("run", "-d", "--name", "open", "-p", "127.0.0.1::80", "busybox", *HTTPD)
    ports = json.loads(rig.cli("inspect", "-f", "{{json .NetworkSettings.Ports}}",
                               "open").stdout)["80/tcp"]
    assert ports[0]["HostIp"] == "127.0.0.1" and ports[0]["HostPort"] not in ("", "0", port)
    assert until(lambda: _get(int(ports[0]["HostPort"]))) == b"served\n"
    assert f"0.0.0.0:{port}->80/tcp" in rig.cli("ps", "--filter", "name=pa").stdout
    rules = _nat_rules(tmp_path)
    assert f"dport {port} " in rules and f"dport {ports[0]['HostPort']} " in rules
    rig.cli("rm", "-f", "pa", "open")
    rules = _nat_rules(tmp_path)
    assert f"dport {port} " not in rules and f"dport {ports[0]['HostPort']} " not in rules
    assert _get(int(port)) is None


def test_ranged_host_port_skips_a_port_in_use(rig: DockerRig) -> None:
    rig.cli("run", "-d", "--name", "first", "-p", "127.0.0.1:28411:80", "busybox", *HTTPD)
    rig.cli("run", "-d", "--name", "ranged", "-p", "127.0.0.1:28411-28413:80", "busybox",
            *HTTPD)
    assert rig.cli("port", "ranged", "80/tcp").stdout == "127.0.0.1:28412\n"
    assert until(lambda: _get(28412)) == b"served\n"
    rig.cli("rm", "-f", "first", "ranged")


def test_docker_py_publishes_and_reaches_a_tcp_port(rig: DockerRig) -> None:
    client = rig.client()
    try:
        c = client.containers.run(
            "busybox", ["sh", "-c", "while true; do echo pong | nc -l -p 7000; done"],
            detach=True, name="nc", ports={"7000/tcp": ("127.0.0.1", None)})
        c.reload()
        port = int(c.ports["7000/tcp"][0]["HostPort"])

        def ping() -> bytes | None:
            try:
                out = subprocess.run(["busybox", "nc", "127.0.0.1", str(port)], input=b"",
                                     capture_output=True, timeout=5).stdout
            except subprocess.TimeoutExpired:
                return None
            return out or None
        assert until(ping) == b"pong\n"
        c.remove(force=True)
    finally:
        client.close()
