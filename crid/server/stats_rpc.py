"""Container and pod stats RPCs, and the cAdvisor-style metrics, from crid.containers.stats."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from crid.api import api_pb2 as pb
from crid.containers.manager import ContainerManager, ListFilter
from crid.containers.record import ContainerRecord, ContainerState
from crid.containers.stats import CgroupReader, LayerCache, Usage, net_usage
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
    layers: LayerCache = field(default_factory=LayerCache)
    # id -> (record, its attributes message): records are immutable, so the message stays
    # valid until the record is replaced; labels and annotations are copied once, not per scrape.
    attributes: dict[str, tuple[ContainerRecord, pb.ContainerAttributes]] = field(
        default_factory=dict)
    pod_attributes: dict[str, tuple[PodSandbox, pb.PodSandboxAttributes]] = field(
        default_factory=dict)


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


def _attributes(d: StatsDeps, r: ContainerRecord) -> pb.ContainerAttributes:
    hit = d.attributes.get(r.id)
    if hit is None or hit[0] is not r:
        hit = d.attributes[r.id] = (r, pb.ContainerAttributes(
            id=r.id, metadata=pb.ContainerMetadata(name=r.name, attempt=r.attempt),
            labels=r.labels, annotations=r.annotations))
    return hit[1]


def container_stats(d: StatsDeps, r: ContainerRecord) -> pb.ContainerStats:
    ts = time.time_ns()
    u = (d.reader.sample(r.cgroups_path, r.started_at)
         if r.state is not ContainerState.EXITED else None)
    layer = d.layers.usage(Path(r.bundle))
    return pb.ContainerStats(
        attributes=_attributes(d, r), cpu=_cpu(u, ts), memory=_memory(u, ts),
        swap=pb.SwapUsage(timestamp=u.cpu.timestamp_ns if u else ts,
                          swap_usage_bytes=_U(value=u.swap if u else 0)),
        writable_layer=pb.FilesystemUsage(
            timestamp=layer.timestamp_ns, fs_id=pb.FilesystemIdentifier(
                mountpoint=layer.mountpoint),
            used_bytes=_U(value=layer.used_bytes), inodes_used=_U(value=layer.inodes)))


def _stats_filter(f: pb.ContainerStatsFilter) -> ListFilter:
    return ListFilter(id_prefix=f.id, pod_id=f.pod_sandbox_id,
                      labels=tuple(sorted(f.label_selector.items())))


def container_stats_rpc(d: StatsDeps, req: pb.ContainerStatsRequest) -> pb.ContainerStatsResponse:
    if not req.container_id:
        raise InvalidArgument("container id is required")
    return pb.ContainerStatsResponse(stats=container_stats(d, d.containers.get(req.container_id)))


def _prune(d: StatsDeps) -> None:
    """Forgets what belonged to containers and pods that are gone or exited: open cgroup
    directories, previous samples, cached layer usage and attribute messages."""
    records = d.containers.list()
    pods = d.pods.list_pods()
    live = [r for r in records if r.state is not ContainerState.EXITED]
    d.reader.retain([r.cgroups_path for r in live] + ["/" + p.cgroup for p in pods if p.cgroup])
    d.layers.retain([Path(r.bundle) for r in live])
    ids = {r.id for r in records}
    for gone in d.attributes.keys() - ids:
        d.attributes.pop(gone, None)
    pod_ids = {p.id.value for p in pods}
    for gone in d.pod_attributes.keys() - pod_ids:
        d.pod_attributes.pop(gone, None)


def _all_container_stats(d: StatsDeps, f: pb.ContainerStatsFilter) -> list[pb.ContainerStats]:
    if f == _NO_FILTER:
        _prune(d)
    hidden = d.pods.ids_of(DOCKER)
    return [container_stats(d, r) for r in d.containers.list(_stats_filter(f))
            if r.state is not ContainerState.EXITED and r.pod_id not in hidden]


_NO_FILTER = pb.ContainerStatsFilter()


def list_container_stats_rpc(d: StatsDeps, req: pb.ListContainerStatsRequest
                             ) -> pb.ListContainerStatsResponse:
    return pb.ListContainerStatsResponse(stats=_all_container_stats(d, req.filter))


def stream_container_stats_rpc(d: StatsDeps, req: pb.StreamContainerStatsRequest
                               ) -> Iterator[pb.StreamContainerStatsResponse]:
    items = _all_container_stats(d, req.filter)
    for i in range(0, len(items), STREAM_CHUNK):
        yield pb.StreamContainerStatsResponse(container_stats=items[i:i + STREAM_CHUNK])


# -- pods -------------------------------------------------------------------------------------

def _running(d: StatsDeps) -> dict[str, list[ContainerRecord]]:
    """Running containers by pod id, in one pass over the index."""
    out: dict[str, list[ContainerRecord]] = {}
    for r in d.containers.list(ListFilter(state=ContainerState.RUNNING)):
        out.setdefault(r.pod_id, []).append(r)
    return out


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


def _pod_attributes(d: StatsDeps, pod: PodSandbox) -> pb.PodSandboxAttributes:
    hit = d.pod_attributes.get(pod.id.value)
    if hit is None or hit[0] is not pod:
        hit = d.pod_attributes[pod.id.value] = (pod, pb.PodSandboxAttributes(
            id=pod.id.value, metadata=pod_convert.metadata_pb(pod.spec.metadata),
            labels=pod.spec.labels, annotations=pod.spec.annotations))
    return hit[1]


def pod_stats(d: StatsDeps, pod: PodSandbox,
              running: dict[str, list[ContainerRecord]] | None = None) -> pb.PodSandboxStats:
    """The pod's stats; `running`: what `_running` gives, when the caller has it already."""
    ts = time.time_ns()
    mine = (running if running is not None else _running(d)).get(pod.id.value, [])
    u = d.reader.sample("/" + pod.cgroup, pod.created_at) if pod.cgroup else None
    linux = pb.LinuxPodSandboxStats(
        cpu=_cpu(u, ts), memory=_memory(u, ts),
        process=pb.ProcessUsage(timestamp=u.cpu.timestamp_ns if u else ts,
                                process_count=_U(value=u.processes if u else 0)),
        containers=[container_stats(d, r) for r in mine])
    net = _network(pod, mine, ts)
    if net is not None:
        linux.network.CopyFrom(net)
    return pb.PodSandboxStats(attributes=_pod_attributes(d, pod), linux=linux)


def pod_stats_rpc(d: StatsDeps, req: pb.PodSandboxStatsRequest) -> pb.PodSandboxStatsResponse:
    return pb.PodSandboxStatsResponse(stats=pod_stats(d, d.pods.status(req.pod_sandbox_id)))


def _pods(d: StatsDeps, f: pb.PodSandboxStatsFilter) -> list[PodSandbox]:
    return d.pods.list_pods(PodFilter(id_prefix=f.id, labels=dict(f.label_selector),
                                      front_door=CRI))


def _all_pod_stats(d: StatsDeps, f: pb.PodSandboxStatsFilter) -> list[pb.PodSandboxStats]:
    if f == _NO_POD_FILTER:
        _prune(d)
    running = _running(d)
    return [pod_stats(d, p, running) for p in _pods(d, f)]


_NO_POD_FILTER = pb.PodSandboxStatsFilter()


def list_pod_stats_rpc(d: StatsDeps, req: pb.ListPodSandboxStatsRequest
                       ) -> pb.ListPodSandboxStatsResponse:
    return pb.ListPodSandboxStatsResponse(stats=_all_pod_stats(d, req.filter))


def stream_pod_stats_rpc(d: StatsDeps, req: pb.StreamPodSandboxStatsRequest
                         ) -> Iterator[pb.StreamPodSandboxStatsResponse]:
    items = _all_pod_stats(d, req.filter)
    for i in range(0, len(items), STREAM_CHUNK):
        yield pb.StreamPodSandboxStatsResponse(pod_sandbox_stats=items[i:i + STREAM_CHUNK])
