"""Fixtures for the network integration tests: netns, a bridge network of our own, probes.

Every kernel object carries the helper prefix: netns ``crt-net-*``, bridges ``crtn*``, nft
tables ``crt_net_*``; all are removed afterwards.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from crid.network.api import NetworkOptions
from crid.network.bridge import BridgeNetwork

PROBE = os.path.join(os.path.dirname(__file__), "probe.py")

if os.geteuid() != 0:
    pytest.skip("network integration tests need root", allow_module_level=True)


def sh(cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60)


class Netns:
    """Named netns ``crt-net-<tag>-<hex>`` made by ``ip netns add``."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.procs: list[subprocess.Popen] = []

    def make(self, tag: str = "p") -> str:
        name = f"crt-net-{tag}-{uuid.uuid4().hex[:8]}"
        res = sh(f"ip netns add {name}")
        assert res.returncode == 0, res.stderr
        self.names.append(name)
        return name

    def path(self, name: str) -> str:
        return f"/run/netns/{name}"

    def delete(self, name: str) -> None:
        sh(f"ip netns del {name}")
        if name in self.names:
            self.names.remove(name)

    def serve(self, ns: str | None, proto: str, port: int, bind: str = "::") -> None:
        pre = ["ip", "netns", "exec", ns] if ns else []
        p = subprocess.Popen([*pre, sys.executable, PROBE, "serve", proto, str(port), bind],
                             stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"

    def send(self, ns: str | None, proto: str, host: str, port: int, msg: str = "hi") -> str:
        pre = f"ip netns exec {ns} " if ns else ""
        res = sh(f"{pre}{sys.executable} {PROBE} send {proto} {host} {port} {msg}")
        assert res.returncode == 0, res.stderr
        return res.stdout.strip()

    def cleanup(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()
        for name in list(self.names):
            self.delete(name)


@pytest.fixture
def netns() -> Iterator[Netns]:
    n = Netns()
    yield n
    n.cleanup()


def unique_options(tmp_path, v6: bool = False) -> NetworkOptions:
    tag = uuid.uuid4().hex[:6]
    a, b = random.randint(0, 255), random.randint(0, 255)
    return NetworkOptions(
        mode="builtin", bridge=f"crtn{tag}", pod_cidr=f"10.{200 + a % 50}.{b}.0/24",
        pod_cidr_v6=f"fd55:{a:x}:{b:x}::/64" if v6 else "", state_dir=str(tmp_path / "state"),
        nft_table=f"crt_net_{tag}", cni_conf_dir=str(tmp_path / "no-cni"))


@pytest.fixture
def options(tmp_path) -> NetworkOptions:
    return unique_options(tmp_path)


@pytest.fixture
def bridge_net(options) -> Iterator[BridgeNetwork]:
    net = BridgeNetwork(options)
    yield net
    net.release_orphans(set())
    net.remove_network()
