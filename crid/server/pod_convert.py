"""Protobuf <-> pod domain dataclasses, and the pod RPCs as functions of (manager, request).

Protobuf stops here: `crid.pods` sees only dataclasses. Each `*_rpc` function is what one
RuntimeService method does, so the servicer's methods stay one-liners.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from crid.api import api_pb2 as pb
from crid.errors import InvalidArgument
from crid.network.api import DNSConfig, PortMapping, Protocol_
from crid.pods import (
    IdMapping,
    Metadata,
    NamespaceOptions,
    PodFilter,
    PodManager,
    PodSandbox,
    PodSpec,
    PodState,
    UserNamespace,
)
from crid.pods.model import CRI
from crid.server.container_convert import check_run_as_group
from crid.server.container_convert import resources as resources_from_pb
from crid.server.wire import WireCache, int_field

STREAM_CHUNK = 100  # sandboxes per StreamPodSandboxes message

_MODES: dict[int, str] = {pb.POD: "POD", pb.CONTAINER: "CONTAINER", pb.NODE: "NODE",
                          pb.TARGET: "TARGET"}
_PROTOCOLS: dict[int, Protocol_] = {pb.TCP: "TCP", pb.UDP: "UDP", pb.SCTP: "SCTP"}
_STATE_PB = {PodState.READY: pb.SANDBOX_READY, PodState.NOTREADY: pb.SANDBOX_NOTREADY}


# -- requests -> domain -----------------------------------------------------------------

def spec_from_pb(req: pb.RunPodSandboxRequest) -> PodSpec:
    """The domain request for RunPodSandbox.

    Raises:
        InvalidArgument: config or config.metadata is missing, or an enum value is unknown.
    """
    if not req.HasField("config") or not req.config.HasField("metadata"):
        raise InvalidArgument("RunPodSandbox needs config.metadata (name, uid, namespace)")
    c, md = req.config, req.config.metadata
    linux = c.linux
    check_run_as_group(linux.security_context, "pod sandbox security_context")
    ns = linux.security_context.namespace_options
    dns = None
    if c.HasField("dns_config"):
        dns = DNSConfig(tuple(c.dns_config.servers), tuple(c.dns_config.searches),
                        tuple(c.dns_config.options))
    return PodSpec(
        metadata=Metadata(md.name, md.uid, md.namespace, md.attempt),
        runtime_handler=req.runtime_handler, hostname=c.hostname,
        log_directory=c.log_directory, dns=dns,
        port_mappings=tuple(_port(p) for p in c.port_mappings),
        labels=dict(c.labels), annotations=dict(c.annotations),
        cgroup_parent=linux.cgroup_parent,
        namespaces=NamespaceOptions(_mode(ns.network, "network"), _mode(ns.pid, "pid"),
                                    _mode(ns.ipc, "ipc"), ns.target_id,
                                    _userns(ns.userns_options)
                                    if ns.HasField("userns_options") else None),
        sysctls=dict(linux.sysctls),
        overhead=resources_from_pb(linux.overhead) if linux.HasField("overhead") else None,
        resources=resources_from_pb(linux.resources) if linux.HasField("resources") else None,
        privileged=linux.security_context.privileged)


def _mode(value: int, what: str) -> str:
    if value not in _MODES:
        raise InvalidArgument(f"namespace_options.{what}: unknown NamespaceMode {value}")
    return _MODES[value]


def _userns(u: pb.UserNamespace) -> UserNamespace | None:
    """NODE is the host's user namespace, as is an absent userns_options (the mode's zero
    value is POD: only a message the kubelet set asks for one); the others are checked
    later."""
    mode = _mode(u.mode, "userns_options.mode")
    if mode == "NODE":
        return None
    return UserNamespace(mode, tuple(_idmap(m) for m in u.uids),
                         tuple(_idmap(m) for m in u.gids))


def _idmap(m: pb.IDMapping) -> IdMapping:
    return IdMapping(m.container_id, m.host_id, m.length)


def _userns_pb(u: UserNamespace | None) -> pb.UserNamespace:
    if u is None:
        return pb.UserNamespace(mode=pb.NODE)
    return pb.UserNamespace(
        mode=pb.NamespaceMode.Value(u.mode),
        uids=[pb.IDMapping(host_id=m.host_id, container_id=m.container_id, length=m.length)
              for m in u.uids],
        gids=[pb.IDMapping(host_id=m.host_id, container_id=m.container_id, length=m.length)
              for m in u.gids])


def _port(p: pb.PortMapping) -> PortMapping:
    if p.protocol not in _PROTOCOLS:
        raise InvalidArgument(f"port_mappings: unknown protocol {p.protocol}")
    return PortMapping(p.container_port, p.host_port, _PROTOCOLS[p.protocol], p.host_ip)


def filter_from_pb(f: pb.PodSandboxFilter) -> PodFilter:
    state = None
    if f.HasField("state"):
        state = PodState.READY if f.state.state == pb.SANDBOX_READY else PodState.NOTREADY
    return PodFilter(id_prefix=f.id, state=state, labels=dict(f.label_selector), front_door=CRI)


# -- domain -> responses ----------------------------------------------------------------

def metadata_pb(md: Metadata) -> pb.PodSandboxMetadata:
    return pb.PodSandboxMetadata(name=md.name, uid=md.uid, namespace=md.namespace,
                                 attempt=md.attempt)


def sandbox_pb(pod: PodSandbox) -> pb.PodSandbox:
    return pb.PodSandbox(id=pod.id.value, metadata=metadata_pb(pod.spec.metadata),
                         state=_STATE_PB[pod.state], created_at=pod.created_at,
                         labels=pod.spec.labels, annotations=pod.spec.annotations,
                         runtime_handler=pod.spec.runtime_handler)


def status_pb(pod: PodSandbox) -> pb.PodSandboxStatus:
    ns = pod.spec.namespaces
    ips = list(pod.ips)
    return pb.PodSandboxStatus(
        id=pod.id.value, metadata=metadata_pb(pod.spec.metadata), state=_STATE_PB[pod.state],
        created_at=pod.created_at,
        network=pb.PodSandboxNetworkStatus(
            ip=ips[0] if ips else "", additional_ips=[pb.PodIP(ip=i) for i in ips[1:]]),
        linux=pb.LinuxPodSandboxStatus(namespaces=pb.Namespace(options=pb.NamespaceOption(
            network=ns.network, pid=ns.pid, ipc=ns.ipc, target_id=ns.target_id,
            userns_options=_userns_pb(ns.userns)))),
        labels=pod.spec.labels, annotations=pod.spec.annotations,
        runtime_handler=pod.spec.runtime_handler)


def verbose_info(pods: PodManager, pod: PodSandbox) -> dict[str, str]:
    paths = pods.paths(pod)
    info: dict[str, Any] = {
        "id": pod.id.value, "state": pod.state.value, "pod_dir": str(paths.dir),
        "namespaces": pods.namespace_paths(pod),
        "shm": str(paths.shm) if pod.spec.namespaces.ipc != "NODE" else "/dev/shm",
        "resolv_conf": str(paths.dir / "resolv.conf"), "hosts": str(paths.dir / "hosts"),
        "hostname_file": str(paths.dir / "hostname"), "cgroup": pod.cgroup,
        "infra": {"pid": pod.infra.pid, "start_time": pod.infra.start_time}
        if pod.infra else None,
        "runtimeSpec": pod.to_record()["spec"],
    }
    return {"info": json.dumps(info)}


# -- the RPCs ---------------------------------------------------------------------------

def run_rpc(pods: PodManager, req: pb.RunPodSandboxRequest,
            caller_gone: Callable[[], bool]) -> pb.RunPodSandboxResponse:
    pod_id = pods.run(spec_from_pb(req), caller_gone)
    return pb.RunPodSandboxResponse(pod_sandbox_id=pod_id.value)


def stop_rpc(pods: PodManager, req: pb.StopPodSandboxRequest) -> pb.StopPodSandboxResponse:
    pods.stop(req.pod_sandbox_id)
    return pb.StopPodSandboxResponse()


def remove_rpc(pods: PodManager,
               req: pb.RemovePodSandboxRequest) -> pb.RemovePodSandboxResponse:
    pods.remove(req.pod_sandbox_id)
    return pb.RemovePodSandboxResponse()


@dataclass
class PodWire:
    """Each pod record's PodSandbox message and PodSandboxStatus on the wire, rebuilt only when
    the record is replaced (see crid/server/wire.py): the kubelet lists every second."""

    listed: WireCache[PodSandbox] = field(default_factory=lambda: WireCache(sandbox_pb))
    statuses: WireCache[PodSandbox] = field(default_factory=lambda: WireCache(status_pb))


def status_rpc(pods: PodManager, req: pb.PodSandboxStatusRequest,
               wire: PodWire) -> pb.PodSandboxStatusResponse | bytes:
    """The status; without `verbose`, the record's prebuilt status (field 1) and the time
    (field 4) as wire bytes."""
    pod = pods.status(req.pod_sandbox_id)
    if not req.verbose:
        return wire.statuses.item(pod.id.value, pod) + int_field(4, time.time_ns())
    resp = pb.PodSandboxStatusResponse(status=status_pb(pod), timestamp=time.time_ns())
    resp.info.update(verbose_info(pods, pod))
    return resp


def _items(pods: PodManager, f: pb.PodSandboxFilter, wire: PodWire) -> list[bytes]:
    unfiltered = f == _NO_FILTER
    # Never every pod: Docker-side pods stay out of the CRI's sight (the kubelet kills the
    # running pods it does not know).
    found = pods.list_pods(_CRI_PODS if unfiltered else filter_from_pb(f))
    items = [wire.listed.item(p.id.value, p) for p in found]
    if unfiltered:
        ids = [p.id.value for p in found]
        wire.listed.retain(ids)
        wire.statuses.retain(ids)
    return items


_NO_FILTER = pb.PodSandboxFilter()
_CRI_PODS = PodFilter(front_door=CRI)


def list_rpc(pods: PodManager, req: pb.ListPodSandboxRequest, wire: PodWire) -> bytes:
    """ListPodSandboxResponse on the wire: its field 1 is the repeated items."""
    return b"".join(_items(pods, req.filter, wire))


def stream_rpc(pods: PodManager, req: pb.StreamPodSandboxesRequest,
               wire: PodWire) -> Iterator[bytes]:
    """StreamPodSandboxesResponse messages (field 1: pod_sandboxes) of STREAM_CHUNK each."""
    items = _items(pods, req.filter, wire)
    for i in range(0, len(items), STREAM_CHUNK):
        yield b"".join(items[i:i + STREAM_CHUNK])


def update_resources_rpc(pods: PodManager, req: pb.UpdatePodSandboxResourcesRequest
                         ) -> pb.UpdatePodSandboxResourcesResponse:
    pods.update_resources(
        req.pod_sandbox_id,
        resources_from_pb(req.overhead) if req.HasField("overhead") else None,
        resources_from_pb(req.resources) if req.HasField("resources") else None)
    return pb.UpdatePodSandboxResourcesResponse()
