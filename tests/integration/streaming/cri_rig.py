"""A real crid (over its socket) with a pulled busybox and a networked pod, for the streaming
tests through the CRI: Exec/Attach/PortForward RPCs, then crid's own streaming client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from crid.api import api_pb2 as pb
from crid.streaming.protocol.client import CommandIO, CommandResult, exec_spdy, exec_websocket
from tests.integration.containers.helpers import container_config, wait_for
from tests.integration.pods.helpers import cleanup_cgroup_parent, pod_config, remove_test_network
from tests.rig import catalog
from tests.rig.daemon import CridProcess, start_crid
from tests.rig.distribution import DistributionClient
from tests.rig.images import push
from tests.rig.registry import RegistryOptions, running_registry

PREFIX = "crt-sw-"


def write_config(base: Path, bridge: str) -> Path:
    """A test bridge and pod CIDR of our own (never crid0 / 10.88.0.0/16)."""
    cfg = base / "crid.toml"
    cfg.write_text(f'[network]\nmode = "builtin"\nbridge = "{bridge}"\n'
                   f'pod_cidr = "10.215.0.0/16"\ncni_conf_dir = "{base}/cni"\n'
                   '[pods]\nshm_size = "8Mi"\n')
    return cfg


@dataclass
class StreamRig:
    daemon: CridProcess
    image: str
    log_dir: Path
    cgroup_parent: str
    pods: list[str] = field(default_factory=list)
    pod: tuple[str, pb.PodSandboxConfig] | None = None
    sleeper: str = ""

    @property
    def rt(self) -> Any:
        return self.daemon.runtime

    def run_pod(self) -> tuple[str, pb.PodSandboxConfig]:
        cfg = pod_config(name=f"{PREFIX}pod-{secrets.token_hex(3)}", parent=self.cgroup_parent)
        cfg.log_directory = str(self.log_dir / cfg.metadata.name)
        pod_id = self.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg),
                                       timeout=60).pod_sandbox_id
        self.pods.append(pod_id)
        return pod_id, cfg

    def run(self, *command: str, start: bool = True, **kw: object) -> str:
        """Creates (and starts) a busybox container in the rig's pod."""
        assert self.pod is not None
        cfg = container_config(name=f"{PREFIX}{secrets.token_hex(3)}", command=command,
                               image=self.image, **kw)
        cid = self.rt.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=self.pod[0], config=cfg, sandbox_config=self.pod[1]),
            timeout=60).container_id
        if start:
            self.rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=30)
        return cid

    def state(self, cid: str) -> int:
        return self.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status.state

    def wait_exited(self, cid: str, timeout: float = 10) -> None:
        wait_for("exit", lambda: self.state(cid) == pb.CONTAINER_EXITED, timeout)

    def exec_url(self, cid: str, *cmd: str, tty: bool = False, stdin: bool = False,
                 stdout: bool = True, stderr: bool = True) -> str:
        return self.rt.Exec(pb.ExecRequest(container_id=cid, cmd=list(cmd), tty=tty,
                                           stdin=stdin, stdout=stdout, stderr=stderr),
                            timeout=30).url

    def exec_sync(self, cid: str, *cmd: str) -> pb.ExecSyncResponse:
        return self.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=list(cmd), timeout=10),
                                timeout=30)

    def remove_all(self) -> None:
        for pod_id in self.pods:
            with contextlib.suppress(Exception):
                self.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                                       timeout=60)
                self.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                                         timeout=60)


def run_session(url: str, io: CommandIO, transport: str = "spdy",
                timeout: float = 60) -> CommandResult:
    call = exec_spdy if transport == "spdy" else exec_websocket
    return asyncio.run(asyncio.wait_for(call(url, io), timeout))


@pytest.fixture(scope="module")
def srig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamRig]:
    """One daemon, one networked pod and a sleeping container for the whole module."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    base = tmp_path_factory.mktemp("sw")
    bridge, parent = f"crts{secrets.token_hex(3)}", f"/{PREFIX}{secrets.token_hex(4)}"
    with running_registry(RegistryOptions()) as registry:
        push(DistributionClient(registry), "crt-sw/busybox", catalog.busybox_image(), tag="1")
        daemon = start_crid(base, config=write_config(base, bridge))
        rig = StreamRig(daemon, registry.ref("crt-sw/busybox", "1"), base / "logs", parent)
        try:
            rig.rt  # noqa: B018
            daemon.images.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=rig.image)),
                                    timeout=120)
            rig.pod = rig.run_pod()
            rig.sleeper = rig.run("/bin/sleep", "3600", envs=[pb.KeyValue(key="CRT",
                                                                          value=b"sw")],
                                  working_dir="/tmp")
            yield rig
        finally:
            rig.remove_all()
            code = daemon.stop()
            cleanup_cgroup_parent(parent)
            remove_test_network(bridge)
            assert code == 0, daemon.log()[-5000:]
