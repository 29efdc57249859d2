"""The container tests' rig: one daemon with a test bridge and cgroup parent, an image pulled
from the rig registry, builders for CRI configs, and leak counters."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from crid.api import api_pb2 as pb
from tests.integration.pods.helpers import listed_pods, pod_config
from tests.rig.daemon import CridProcess, start_crid

PREFIX = "crt-ctr-"


def container_config(name: str = "", command: tuple[str, ...] = (), image: str = "",
                     **kw: object) -> pb.ContainerConfig:
    name = name or f"{PREFIX}{secrets.token_hex(3)}"
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name, attempt=0),
                             image=pb.ImageSpec(image=image), command=list(command),
                             log_path=f"{name}.log", labels={"crt": "yes"})
    for k, v in kw.items():
        attr = getattr(cfg, k)
        if hasattr(v, "DESCRIPTOR"):
            attr.CopyFrom(v)
        elif isinstance(v, dict):
            attr.update(v)
        elif isinstance(v, list):
            attr.extend(v)
        else:
            setattr(cfg, k, v)
    return cfg


@dataclass
class ContainerRig:
    base: Path
    config: Path
    daemon: CridProcess
    cgroup_parent: str
    bridge: str
    image: str = ""
    log_dir: Path = field(init=False)
    pods: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.log_dir = self.base / "logs"

    @property
    def rt(self):  # noqa: ANN201
        return self.daemon.runtime

    def run_pod(self, **kw: object) -> tuple[str, pb.PodSandboxConfig]:
        cfg = pod_config(name=f"{PREFIX}pod-{secrets.token_hex(3)}", parent=self.cgroup_parent,
                         **kw)
        cfg.log_directory = str(self.log_dir / cfg.metadata.name)
        pod_id = self.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg),
                                       timeout=60).pod_sandbox_id
        self.pods.append(pod_id)
        return pod_id, cfg

    def create(self, pod: tuple[str, pb.PodSandboxConfig], cfg: pb.ContainerConfig) -> str:
        if not cfg.image.image:
            cfg.image.image = self.image
        return self.rt.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod[0], config=cfg, sandbox_config=pod[1]), timeout=60).container_id

    def run(self, pod: tuple[str, pb.PodSandboxConfig], cfg: pb.ContainerConfig) -> str:
        cid = self.create(pod, cfg)
        self.rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=30)
        return cid

    def status(self, cid: str, verbose: bool = False) -> pb.ContainerStatusResponse:
        return self.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid,
                                                                 verbose=verbose))

    def exec(self, cid: str, *cmd: str, timeout: int = 10) -> pb.ExecSyncResponse:
        return self.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=list(cmd),
                                                   timeout=timeout), timeout=timeout + 20)

    def stop(self, cid: str, timeout: int = 0) -> None:
        self.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=timeout),
                              timeout=timeout + 40)

    def remove(self, cid: str) -> None:
        self.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=40)

    def restart(self) -> None:
        self.daemon.stop()
        self.daemon = start_crid(self.base, config=self.config)

    def remove_all(self) -> None:
        """Every pod the daemon has (all are this test's), and those the test made."""
        for pod_id in dict.fromkeys(self.pods + listed_pods(self.rt)):
            try:
                self.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                                       timeout=60)
                self.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                                         timeout=60)
            except grpc.RpcError:
                pass


def wait_for(what: str, check: Callable[[], object], timeout: float = 10.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as e:
        return e.code()  # type: ignore[attr-defined, no-any-return]
    return grpc.StatusCode.OK


def read_log(path: Path) -> list[tuple[str, str, str]]:
    """(stream, tag, text) of each CRI log record."""
    out = []
    for line in path.read_text().splitlines():
        _ts, stream, tag, text = (line.split(" ", 3) + [""])[:4]
        out.append((stream, tag, text))
    return out


def mounts_under(path: Path) -> list[str]:
    text = Path("/proc/self/mountinfo").read_text()
    return [ln.split()[4] for ln in text.splitlines() if ln.split()[4].startswith(str(path))]
