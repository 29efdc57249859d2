"""A Docker-side container as the domain sees it: a one-container pod of the DOCKER front door
and the container request inside it, both pure functions of the checked create body."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path

from crid.containers.model import (
    ContainerRequest,
    MountRequest,
    Profile,
    ProfileKind,
    Security,
)
from crid.docker.create_body import CreateBody
from crid.docker.errors import BadRequest
from crid.network.api import DNSConfig, PortMapping
from crid.pods.model import DOCKER, NODE, POD, Metadata, NamespaceOptions, PodSpec
from crid.resources import Resources

NAMESPACE = "docker"  # the Metadata.namespace of every Docker-side pod
CONFIG_ANNOTATION = "io.crid.docker/config"
NAME_ANNOTATION = "io.crid.docker/name"
LOG_NAME = "container.log"  # one log for every run of the container (docker logs shows all)
CPU_PERIOD = 100_000


def pod_spec(name: str, body: CreateBody, log_dir: Path, cgroup_parent: str,
             dns_server: str = "") -> PodSpec:
    """The pod holding the container: network, hostname, DNS, published ports. On a
    user-defined network (`body.network_id`) its DNS is the network's, at `dns_server`."""
    ports = tuple(PortMapping(p.container_port, p.host_port, p.protocol.upper(),  # type: ignore
                              p.host_ip) for p in body.port_bindings)
    host = body.network_mode == "host"
    if body.network_mode == "none" and ports:
        raise BadRequest("conflicting options: port publishing and the container type "
                         "network mode")
    if host:
        ports = ()  # Docker discards them: the host's ports are the container's
    return PodSpec(
        metadata=Metadata(name=name, uid=secrets.token_hex(16), namespace=NAMESPACE),
        hostname="" if host else (body.hostname or ""), log_directory=str(log_dir),
        dns=_dns(body, dns_server), port_mappings=ports, network=body.network_id,
        labels=dict(body.labels), cgroup_parent=cgroup_parent,
        annotations={CONFIG_ANNOTATION: json.dumps(body.to_record()), NAME_ANNOTATION: name},
        namespaces=NamespaceOptions(network=NODE if host else POD, pid="CONTAINER", ipc=POD),
        privileged=body.privileged, front_door=DOCKER,
        attach_network=body.network_mode != "none")


def _dns(body: CreateBody, dns_server: str) -> DNSConfig | None:
    if body.dns:
        return DNSConfig(servers=tuple(body.dns))
    if body.network_id and dns_server:  # ndots:0 as Docker's: a bare name is tried as is
        return DNSConfig(servers=(dns_server,), options=("ndots:0",))
    return None


def _user(text: str) -> dict[str, object]:
    user, _, group = text.partition(":")
    out: dict[str, object] = {}
    if user.isdigit():
        out["run_as_user"] = int(user)
    elif user:
        out["run_as_username"] = user
    if group:
        if not group.isdigit():
            raise BadRequest(f"user {text[:60]!r}: a group must be numeric here")
        out["run_as_group"] = int(group)
    return out


def _resources(body: CreateBody) -> Resources:
    quota = body.nano_cpus * CPU_PERIOD // 1_000_000_000 if body.nano_cpus else 0
    if body.nano_cpus and quota < 1000:
        raise BadRequest("Range of CPUs is from 0.01 to the number of CPUs available")
    return Resources(cpu_period=CPU_PERIOD if quota else 0, cpu_quota=quota,
                     cpu_shares=body.cpu_shares, memory_limit=body.memory)


def _mounts(body: CreateBody, volume_dir: Callable[[str], Path]) -> tuple[MountRequest, ...]:
    """Binds and volumes, parents before children (as Docker sorts them), so a mount inside
    another's path lands on it rather than under it."""
    mounts = [*(MountRequest(b.target, b.source, b.readonly) for b in body.binds),
              *(MountRequest(v.target, str(volume_dir(v.name)), v.readonly)
                for v in body.volumes)]
    return tuple(sorted(mounts, key=lambda m: len([p for p in m.container_path.split("/")
                                                    if p])))


def container_request(name: str, attempt: int, body: CreateBody, image_id: str,
                      volume_dir: Callable[[str], Path]) -> ContainerRequest:
    """The container in the pod; attempt counts its runs (each restart is a new CRI
    container in the same pod). `volume_dir` names a volume's data directory."""
    env = tuple((k, v) for k, _, v in (e.partition("=") for e in body.env))
    seccomp = Profile(ProfileKind.UNCONFINED if body.privileged else ProfileKind.RUNTIME_DEFAULT)
    security = Security(privileged=body.privileged, caps_add=tuple(body.cap_add),
                        caps_drop=tuple(body.cap_drop), readonly_rootfs=body.readonly_rootfs,
                        seccomp=seccomp, **_user(body.user))  # type: ignore[arg-type]
    return ContainerRequest(
        name=name, attempt=attempt, image=image_id,
        command=tuple(body.entrypoint) if body.entrypoint is not None else (),
        args=tuple(body.cmd) if body.cmd is not None else (),
        working_dir=body.working_dir, env=env,
        mounts=_mounts(body, volume_dir),
        labels=dict(body.labels), log_path=LOG_NAME, stdin=body.open_stdin,
        stdin_once=body.stdin_once, tty=body.tty, resources=_resources(body),
        security=security, stop_signal=body.stop_signal)
