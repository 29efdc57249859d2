"""Container and pod stats RPCs, and the cAdvisor-style metrics, from crid.containers.stats."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from crid.api import api_pb2 as pb
from crid.containers.manager import ContainerManager, ListFilter
from crid.containers.record import ContainerRecord, ContainerState
from crid.containers.stats import CgroupReader, Usage, layer_usage, net_usage
from crid.errors import InvalidArgument
from crid.pods import PodFilter, PodManager, PodSandbox
from crid.pods.model import CRI, DOCKER
from crid.server import pod_convert

STREAM_CHUNK = 100
_U = pb.UInt64Value


@dataclass
class StatsDeps:
    containers: ContainerManager
    pods: PodManager
    reader: CgroupReader


# -- containers -----------------------------------------------------------------------------

def _cpu(u: Usage | None, ts: int) -> pb.CpuUsage:
    if u is None:
        return pb.CpuUsage(timestamp=ts)
    return pb.CpuUsage(timestamp=u.cpu.timestamp_ns, usage_core_nano_seconds=_U(
        value=u.cpu.usage_ns), usage_nano_cores=_U(value=u.cpu.nano_cores))


def _memory(u: Usage | None, ts: int) -> pb.MemoryUsage:
    if u is None:
        return pb.MemoryUsage(timestamp=ts)
    return pb.MemoryUsage(timestamp=u.cpu.timestamp_ns, working_set_bytes=_U(value=u.working_set),
                          available_bytes=_U(value=u.available), usage_bytes=_U(
                              value=u.memory_usage), rss_bytes=_U(value=u.rss),
                          page_faults=_U(value=u.page_faults),
                          major_page_faults=_U(value=u.major_page_faults))


def container_stats(d: StatsDeps, r: ContainerRecord) -> pb.ContainerStats:
    ts = time.time_ns()
    u = d.reader.sample(r.cgroups_path) if r.state is not ContainerState.EXITED else None
    layer = layer_usage(Path(r.bundle), ts)
    return pb.ContainerStats(
        attributes=pb.ContainerAttributes(id=r.id, metadata=pb.ContainerMetadata(
            name=r.name, attempt=r.attempt), labels=r.labels, annotations=r.annotations),
        cpu=_cpu(u, ts), memory=_memory(u, ts),
        swap=pb.SwapUsage(timestamp=ts, swap_usage_bytes=_U(value=u.swap if u else 0)),
        writable_layer=pb.FilesystemUsage(
            timestamp=ts, fs_id=pb.FilesystemIdentifier(mountpoint=layer.mountpoint),
            used_bytes=_U(value=layer.used_bytes), inodes_used=_U(value=layer.inodes)))


def _stats_filter(f: pb.ContainerStatsFilter) -> ListFilter:
    return ListFilter(id_prefix=f.id, pod_id=f.pod_sandbox_id,
                      labels=tuple(sorted(f.label_selector.items())))


def container_stats_rpc(d: StatsDeps, req: pb.ContainerStatsRequest) -> pb.ContainerStatsResponse:
    if not req.container_id:
        raise InvalidArgument("container id is required")
    return pb.ContainerStatsResponse(stats=container_stats(d, d.containers.get(req.container_id)))


def _all_container_stats(d: StatsDeps, f: pb.ContainerStatsFilter) -> list[pb.ContainerStats]:
    hidden = d.pods.ids_of(DOCKER)
    return [container_stats(d, r) for r in d.containers.list(_stats_filter(f))
            if r.state is not ContainerState.EXITED and r.pod_id not in hidden]


def list_container_stats_rpc(d: StatsDeps, req: pb.ListContainerStatsRequest
                             ) -> pb.ListContainerStatsResponse:
    return pb.ListContainerStatsResponse(stats=_all_container_stats(d, req.filter))


def stream_container_stats_rpc(d: StatsDeps, req: pb.StreamContainerStatsRequest
                               ) -> Iterator[pb.StreamContainerStatsResponse]:
    items = _all_container_stats(d, req.filter)
    for i in range(0, len(items), STREAM_CHUNK):
        yield pb.StreamContainerStatsResponse(container_stats=items[i:i + STREAM_CHUNK])


# -- pods -------------------------------------------------------------------------------------

def _running(d: StatsDeps, pod_id: str) -> list[ContainerRecord]:
    return [r for r in d.containers.list(ListFilter(pod_id=pod_id, state=ContainerState.RUNNING))
            if r.pod_id == pod_id]


def _network(pod: PodSandbox, running: list[ContainerRecord], ts: int) -> pb.NetworkUsage | None:
    if pod.spec.host_network:
        return None
    pids = [r.pid for r in running] + ([pod.infra.pid] if pod.infra else [])
    for pid in pids:
        ifaces = [pb.NetworkInterfaceUsage(name=n.interface, rx_bytes=_U(value=n.rx_bytes),
                                           rx_errors=_U(value=n.rx_errors),
                                           tx_bytes=_U(value=n.tx_bytes),
                                           tx_errors=_U(value=n.tx_errors))
                  for n in net_usage(pid)]
        if ifaces:
            default = next((i for i in ifaces if i.name == "eth0"), ifaces[0])
            return pb.NetworkUsage(timestamp=ts, default_interface=default, interfaces=ifaces)
    return None


def pod_stats(d: StatsDeps, pod: PodSandbox) -> pb.PodSandboxStats:
    ts = time.time_ns()
    running = _running(d, pod.id.value)
    u = d.reader.sample("/" + pod.cgroup) if pod.cgroup else None
    linux = pb.LinuxPodSandboxStats(
        cpu=_cpu(u, ts), memory=_memory(u, ts),
        process=pb.ProcessUsage(timestamp=ts, process_count=_U(value=u.processes if u else 0)),
        containers=[container_stats(d, r) for r in running])
    net = _network(pod, running, ts)
    if net is not None:
        linux.network.CopyFrom(net)
    return pb.PodSandboxStats(
        attributes=pb.PodSandboxAttributes(
            id=pod.id.value, metadata=pod_convert.metadata_pb(pod.spec.metadata),
            labels=pod.spec.labels, annotations=pod.spec.annotations), linux=linux)


def pod_stats_rpc(d: StatsDeps, req: pb.PodSandboxStatsRequest) -> pb.PodSandboxStatsResponse:
    return pb.PodSandboxStatsResponse(stats=pod_stats(d, d.pods.status(req.pod_sandbox_id)))


def _pods(d: StatsDeps, f: pb.PodSandboxStatsFilter) -> list[PodSandbox]:
    return d.pods.list_pods(PodFilter(id_prefix=f.id, labels=dict(f.label_selector),
                                      front_door=CRI))


def list_pod_stats_rpc(d: StatsDeps, req: pb.ListPodSandboxStatsRequest
                       ) -> pb.ListPodSandboxStatsResponse:
    return pb.ListPodSandboxStatsResponse(stats=[pod_stats(d, p) for p in _pods(d, req.filter)])


def stream_pod_stats_rpc(d: StatsDeps, req: pb.StreamPodSandboxStatsRequest
                         ) -> Iterator[pb.StreamPodSandboxStatsResponse]:
    items = [pod_stats(d, p) for p in _pods(d, req.filter)]
    for i in range(0, len(items), STREAM_CHUNK):
        yield pb.StreamPodSandboxStatsResponse(pod_sandbox_stats=items[i:i + STREAM_CHUNK])
