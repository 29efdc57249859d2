"""Shared pieces of the pod tests: a request builder, a rig around one daemon, leak counters."""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from crid.api import api_pb2 as pb
from tests.rig.daemon import CridProcess, remove_test_network, start_crid  # noqa: F401
from tests.rig.leaks import CGROUP_ROOTS, cgroups_under  # noqa: F401


def pod_config(name: str = "", parent: str = "", **kw: object) -> pb.PodSandboxConfig:
    name = name or f"crt-pod-{secrets.token_hex(4)}"
    cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="crt-ns",
                                       attempt=0),
        hostname=name[:60], labels={"app": "crt"}, annotations={"a": "b"},
        linux=pb.LinuxPodSandboxConfig(cgroup_parent=parent))
    for k, v in kw.items():
        if k == "sysctls":
            cfg.linux.sysctls.update(v)  # type: ignore[arg-type]
        elif k == "namespaces":
            cfg.linux.security_context.namespace_options.CopyFrom(v)  # type: ignore[arg-type]
        else:
            getattr(cfg, k).CopyFrom(v) if hasattr(v, "DESCRIPTOR") else setattr(cfg, k, v)
    return cfg


@dataclass
class PodRig:
    base: Path
    config: Path
    daemon: CridProcess
    cgroup_parent: str
    bridge: str
    created: list[str] = field(default_factory=list)

    @property
    def rt(self):  # noqa: ANN201
        return self.daemon.runtime

    def run(self, cfg: pb.PodSandboxConfig | None = None, handler: str = "") -> str:
        cfg = cfg or pod_config(parent=self.cgroup_parent)
        pod_id = self.rt.RunPodSandbox(pb.RunPodSandboxRequest(
            config=cfg, runtime_handler=handler), timeout=60).pod_sandbox_id
        self.created.append(pod_id)
        return pod_id

    def status(self, pod_id: str, verbose: bool = False) -> pb.PodSandboxStatusResponse:
        return self.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(
            pod_sandbox_id=pod_id, verbose=verbose))

    def stop(self, pod_id: str) -> None:
        self.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))

    def remove(self, pod_id: str) -> None:
        self.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))

    def restart(self, sig: int = 15) -> None:
        self.daemon.stop(sig)
        self.daemon = start_crid(self.base, config=self.config)

    def remove_all(self) -> None:
        """Every pod the daemon has (all are this test's), and those the test made."""
        for pod_id in dict.fromkeys(self.created + listed_pods(self.rt)):
            try:
                self.remove(pod_id)
            except grpc.RpcError:
                pass


def listed_pods(rt) -> list[str]:  # noqa: ANN001
    """The ids of the pods the daemon lists ([] when it does not answer)."""
    try:
        return [p.id for p in rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30).items]
    except grpc.RpcError:
        return []


def code_of(call) -> grpc.StatusCode:  # noqa: ANN001
    try:
        call()
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def in_pod(ns_dir: Path, *cmd: str, kinds: tuple[str, ...] = ("net", "ipc", "uts")) -> str:
    """Runs cmd (busybox) inside the pod's pinned namespaces via nsenter."""
    flags = [f"--{k}={ns_dir / k}" for k in kinds]
    return subprocess.run(["nsenter", *flags, "/bin/busybox", *cmd], check=True,
                          capture_output=True, text=True, timeout=10).stdout


def mounts_under(path: Path) -> list[str]:
    text = Path("/proc/self/mountinfo").read_text()
    return [line.split()[4] for line in text.splitlines() if line.split()[4].startswith(str(path))]


def cleanup_cgroup_parent(parent: str) -> None:
    for root in CGROUP_ROOTS:
        base = root / parent.lstrip("/")
        if base.is_dir():
            for p in sorted(base.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if p.is_dir():
                    p.rmdir()
            base.rmdir()


def bridge_ports(bridge: str) -> list[str]:
    """Names of the links enslaved to the test bridge (one host veth per networked pod)."""
    out = subprocess.run(["ip", "-o", "link", "show", "master", bridge], capture_output=True,
                         text=True).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]

