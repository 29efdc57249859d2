"""A crid daemon whose Docker socket the real clients drive: Debian's docker CLI and
docker-py. Short names resolve to the rig registry, where busybox is pushed as `busybox`."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from tests.integration.pods.helpers import cleanup_cgroup_parent
from tests.rig.daemon import CridProcess, start_crid
from tests.rig.distribution import DistributionClient
from tests.rig.images import BuiltImage, push
from tests.rig.registry import Registry

T = TypeVar("T")
DOCKER_CLI = "/usr/bin/docker"  # Debian's docker.io client (a newer one may sit in PATH)


@dataclass
class DockerRig:
    daemon: CridProcess
    registry: Registry
    cgroup_parent: str
    config_dir: Path

    @property
    def socket(self) -> Path:
        return self.daemon.run_root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def env(self) -> dict[str, str]:
        return dict(os.environ, DOCKER_HOST=self.host, DOCKER_CONFIG=str(self.config_dir))

    def cli(self, *args: str, check: bool = True, timeout: float = 120,
            input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        """Runs Debian's docker CLI against the daemon."""
        proc = subprocess.run([DOCKER_CLI, *args], env=self.env(), capture_output=True,
                              text=True, timeout=timeout,
                              input=input.decode() if input is not None else None)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}\n--- crid log tail:\n"
                                 f"{self.daemon.log()[-4000:]}")
        return proc

    def client(self):  # noqa: ANN201
        import docker

        return docker.DockerClient(base_url=self.host, version="auto", timeout=120)


def until(fn: Callable[[], T], timeout: float = 30) -> T:
    """fn()'s first truthy value, polled (a failure if none comes within `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            assert value, "condition never held"
            return value
        time.sleep(0.1)


def write_config(base: Path, bridge: str, registry: Registry, parent: str) -> Path:
    cfg = base / "crid.toml"
    cfg.write_text(f'[network]\nmode = "builtin"\nbridge = "{bridge}"\n'
                   f'pod_cidr = "10.217.{secrets.randbelow(250)}.0/24"\n'
                   f'cni_conf_dir = "{base}/cni"\n'
                   '[pods]\nshm_size = "8Mi"\n'
                   f'[images]\nshort_name_registries = ["{registry.netloc}"]\n'
                   f'[docker]\ncgroup_parent = "{parent}"\n')
    return cfg


@pytest.fixture
def docker_extra_config() -> str:
    """Lines appended to the test daemon's [docker] table (a test module overrides it)."""
    return ""


@pytest.fixture
def docker_rig(tmp_path: Path, registry: Registry, busybox_image: BuiltImage,
               docker_extra_config: str) -> Iterator[DockerRig]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    assert shutil.which(DOCKER_CLI), "tools/install-deps.sh installs docker.io"
    push(DistributionClient(registry), "busybox", busybox_image, tag="latest")
    bridge = f"crtk{secrets.token_hex(3)}"
    parent = f"/crt-docker-{secrets.token_hex(4)}"
    config = write_config(tmp_path, bridge, registry, parent)
    config.write_text(config.read_text() + docker_extra_config)  # [docker] is the last table
    daemon = start_crid(tmp_path, config=config)
    (tmp_path / "docker-config").mkdir()
    rig = DockerRig(daemon, registry, parent, tmp_path / "docker-config")
    try:
        yield rig
    finally:
        _remove_all(rig)
        assert rig.daemon.stop() == 0, rig.daemon.log()[-8000:]  # a test may restart it
        cleanup_cgroup_parent(parent)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        subprocess.run(["nft", "delete", "table", "inet", f"crid_{bridge}"],
                       capture_output=True)


def _remove_all(rig: DockerRig) -> None:
    ids = rig.cli("ps", "-aq", check=False).stdout.split()
    if ids:
        rig.cli("rm", "-f", *ids, check=False)
    rig.cli("network", "prune", "-f", check=False)  # bridges and NAT tables of a failed test
