"""User-defined bridge networks through the docker CLI and docker-py: create/ls/inspect/rm/
prune, `--network NAME` and `--network-alias`, names resolved between containers by the
network's embedded DNS, connect/disconnect, nothing left after removal, and networks across
a daemon restart."""

from __future__ import annotations

import ipaddress
import json
import secrets
import subprocess

import docker
import pytest

from tests.integration.docker.conftest import DockerRig
from tests.rig.daemon import start_crid


@pytest.fixture
def rig(docker_rig: DockerRig) -> DockerRig:
    docker_rig.cli("pull", "-q", "busybox")
    return docker_rig


def _subnet() -> str:
    return f"10.219.{secrets.randbelow(250)}.0/24"


def _inspect(rig: DockerRig, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads(rig.cli("network", "inspect", name).stdout)[0]


def _bridge(net_id: str) -> str:
    return f"crb-{net_id[:11]}"


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def _ports(bridge: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True,
                         text=True).stdout
    return [line.split(":")[1].strip() for line in out.splitlines()]


def _nft_table(net_id: str) -> bool:
    return subprocess.run(["nft", "list", "table", "inet", f"crid_n{net_id[:12]}"],
                          capture_output=True).returncode == 0


def test_create_ls_inspect_rm(rig: DockerRig) -> None:
    subnet = _subnet()
    net_id = rig.cli("network", "create", "--subnet", subnet, "--label", "app=crt",
                     "mynet").stdout.strip()
    assert len(net_id) == 64
    info = _inspect(rig, "mynet")
    assert (info["Id"], info["Driver"], info["Scope"], info["Labels"]) == \
        (net_id, "bridge", "local", {"app": "crt"})
    gateway = str(ipaddress.ip_network(subnet).network_address + 1)
    assert info["IPAM"]["Config"] == [{"Subnet": subnet, "Gateway": gateway}]
    assert _link_exists(_bridge(net_id)) and _nft_table(net_id)
    names = rig.cli("network", "ls", "--format", "{{.Name}} {{.Driver}}").stdout.split("\n")
    assert sorted(n for n in names if n) == ["bridge bridge", "host host", "mynet bridge",
                                             "none null"]
    assert rig.cli("network", "ls", "-q", "--filter", "label=app=crt").stdout.strip() == \
        net_id[:12]
    assert rig.cli("network", "ls", "-q", "--filter", "type=custom").stdout.strip() == \
        net_id[:12]
    dup = rig.cli("network", "create", "mynet", check=False)
    assert dup.returncode == 1 and "already exists" in dup.stderr
    clash = rig.cli("network", "create", "--subnet", subnet, "other", check=False)
    assert clash.returncode == 1 and "overlaps" in clash.stderr
    auto_id = rig.cli("network", "create", "auto").stdout.strip()
    auto = ipaddress.ip_network(_inspect(rig, "auto")["IPAM"]["Config"][0]["Subnet"])
    assert not auto.overlaps(ipaddress.ip_network(subnet))
    builtin = rig.cli("network", "rm", "bridge", check=False)
    assert builtin.returncode == 1 and "pre-defined" in builtin.stderr
    rig.cli("network", "rm", "mynet", "auto")
    for gone in (net_id, auto_id):
        assert not _link_exists(_bridge(gone)) and not _nft_table(gone)
    assert list((rig.daemon.root / "networks").iterdir()) == []
    missing = rig.cli("network", "rm", "mynet", check=False)
    assert missing.returncode == 1 and "No such network: mynet" in missing.stderr


def test_containers_reach_each_other_by_name_and_alias(rig: DockerRig) -> None:
    subnet = ipaddress.ip_network(_subnet())
    net_id = rig.cli("network", "create", "--subnet", str(subnet), "app").stdout.strip()
    rig.cli("network", "create", "--subnet", _subnet(), "elsewhere")
    rig.cli("run", "-d", "--name", "web", "--network", "app", "--network-alias", "www",
            "busybox", "busybox", "httpd", "-f", "-p", "8080", "-h", "/etc")
    info = json.loads(rig.cli("inspect", "web").stdout)[0]
    ip = info["NetworkSettings"]["Networks"]["app"]["IPAddress"]
    assert ipaddress.ip_address(ip) in subnet
    assert "www" in info["NetworkSettings"]["Networks"]["app"]["Aliases"]
    for name in ("web", "www", info["Id"][:12]):
        out = rig.cli("run", "--rm", "--network", "app", "busybox", "busybox", "nslookup",
                      name).stdout
        assert f"Address: {ip}" in out, out
    out = rig.cli("run", "--rm", "--network", "app", "busybox", "wget", "-q", "-O", "-",
                  "http://www:8080/passwd").stdout
    assert out.startswith("root:x:0:0")
    ping = rig.cli("run", "--rm", "--network", "app", "busybox", "busybox", "ping", "-c", "1",
                   "web")
    assert f"from {ip}" in ping.stdout
    # Another network's containers do not see these names.
    other = rig.cli("run", "--rm", "--network", "elsewhere", "busybox", "busybox", "nslookup",
                    "web", check=False)
    assert other.returncode != 0 or f"Address: {ip}" not in other.stdout
    # ... unless they are connected to this network too: then its names resolve for them.
    rig.cli("run", "-d", "--name", "bridger", "--network", "elsewhere", "busybox", "sleep",
            "600")
    rig.cli("network", "connect", "app", "bridger")
    out = rig.cli("exec", "bridger", "busybox", "nslookup", "www").stdout
    assert f"Address: {ip}" in out, out
    rig.cli("rm", "-f", "bridger")
    # A container of the default bridge joins as eth1 and reaches them (its resolv.conf stays
    # the host's, as in Docker); leaving takes eth1 away.
    rig.cli("run", "-d", "--name", "joiner", "busybox", "sleep", "600")
    rig.cli("network", "connect", "--alias", "j", "app", "joiner")
    assert "app" in json.loads(rig.cli("inspect", "joiner").stdout)[0]["NetworkSettings"][
        "Networks"]
    addr = rig.cli("exec", "joiner", "busybox", "ip", "-o", "-4", "addr", "show", "eth1").stdout
    assert str(subnet.network_address)[:-1] in addr
    out = rig.cli("exec", "joiner", "wget", "-q", "-O", "-", f"http://{ip}:8080/passwd")
    assert out.stdout.startswith("root:x:0:0")
    busy = rig.cli("network", "rm", "app", check=False)
    assert busy.returncode == 1 and "active endpoints" in busy.stderr
    containers = _inspect(rig, "app")["Containers"]
    assert sorted(v["Name"] for v in containers.values()) == ["joiner", "web"]
    rig.cli("network", "disconnect", "app", "joiner")
    gone = rig.cli("exec", "joiner", "busybox", "ip", "link", "show", "eth1", check=False)
    assert gone.returncode != 0
    rig.cli("rm", "-f", "web", "joiner")
    assert _ports(_bridge(net_id)) == [] and _inspect(rig, "app")["Containers"] == {}
    leases = rig.daemon.root / "networks" / net_id / "leases"
    assert not any(p.suffix == ".json" for p in leases.rglob("*") if "lease" in p.name)
    rig.cli("network", "rm", "app", "elsewhere")
    assert not _link_exists(_bridge(net_id))


def test_networks_survive_a_daemon_restart(rig: DockerRig) -> None:
    net_id = rig.cli("network", "create", "--subnet", _subnet(), "durable").stdout.strip()
    rig.cli("run", "-d", "--name", "srv", "--network", "durable", "busybox", "sleep", "600")
    config = rig.daemon.root.parent / "crid.toml"
    assert rig.daemon.stop() == 0
    rig.daemon = start_crid(rig.daemon.root.parent, config=config)
    ip = json.loads(rig.cli("inspect", "srv").stdout)[0]["NetworkSettings"]["Networks"][
        "durable"]["IPAddress"]
    out = rig.cli("run", "--rm", "--network", "durable", "busybox", "busybox", "nslookup",
                  "srv").stdout
    assert f"Address: {ip}" in out
    rig.cli("rm", "-f", "srv")
    rig.cli("network", "prune", "-f")
    assert not _link_exists(_bridge(net_id))
    assert rig.cli("network", "ls", "-q", "--filter", "type=custom").stdout == ""


def test_bad_network_requests(rig: DockerRig) -> None:
    api = docker.APIClient(base_url=rig.host, version="auto")
    for kwargs, status in (({"name": "bad name"}, 400), ({"name": "x", "driver": "overlay"}, 404),
                           ({"name": "bridge"}, 403), ({"name": "x", "internal": True}, 400)):
        with pytest.raises(docker.errors.APIError) as e:
            api.create_network(**kwargs)
        assert e.value.status_code == status, kwargs
    pool = docker.types.IPAMPool(subnet="10.219.0.0/24", gateway="10.219.0.9")
    with pytest.raises(docker.errors.APIError) as e:
        api.create_network("x", ipam=docker.types.IPAMConfig(pool_configs=[pool]))
    assert e.value.status_code == 400
    with pytest.raises(docker.errors.APIError) as e:
        api.create_network("x", ipam=docker.types.IPAMConfig(
            pool_configs=[docker.types.IPAMPool(subnet="10.219.0.0/33")]))
    assert e.value.status_code == 400
    run = rig.cli("run", "--rm", "--network", "nope", "busybox", "true", check=False)
    assert run.returncode != 0 and "not found" in run.stderr
    assert rig.cli("network", "ls", "-q", "--filter", "type=custom").stdout == ""
