"""The container RPCs as functions of (deps, request): protobuf in and out, domain in between.

Each function is what one RuntimeService method does, so the servicer's methods stay
one-liners. Requests become domain calls through `container_convert`; records become messages
here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from crid.api import api_pb2 as pb
from crid.containers.manager import ContainerManager, ListFilter
from crid.containers.record import ContainerRecord, ContainerState
from crid.errors import InvalidArgument, NotFound
from crid.events import EventBus
from crid.pods import PodManager
from crid.pods.model import DOCKER
from crid.server import container_convert, pod_convert
from crid.server.wire import WireCache

STREAM_CHUNK = 100
MAX_EXEC_TIMEOUT = 24 * 3600

_STATE_PB = {ContainerState.CREATED: pb.CONTAINER_CREATED,
             ContainerState.RUNNING: pb.CONTAINER_RUNNING,
             ContainerState.EXITED: pb.CONTAINER_EXITED,
             ContainerState.UNKNOWN: pb.CONTAINER_UNKNOWN}
_STATE_DOMAIN = {v: k for k, v in _STATE_PB.items()}
_EVENT_PB = {"CREATED": pb.CONTAINER_CREATED_EVENT, "STARTED": pb.CONTAINER_STARTED_EVENT,
             "STOPPED": pb.CONTAINER_STOPPED_EVENT, "DELETED": pb.CONTAINER_DELETED_EVENT}
_PROPAGATION_PB = {"rprivate": pb.PROPAGATION_PRIVATE, "rslave": pb.PROPAGATION_HOST_TO_CONTAINER,
                   "rshared": pb.PROPAGATION_BIDIRECTIONAL}


@dataclass
class ContainerDeps:
    containers: ContainerManager
    pods: PodManager
    events: EventBus
    # Each record's Container message and ContainerStatusResponse on the wire, rebuilt only
    # when the record is replaced (a state change): ListContainers, every second from the
    # kubelet, joins bytes.
    listed: WireCache[ContainerRecord] = field(
        default_factory=lambda: WireCache(container_pb))
    statuses: WireCache[ContainerRecord] = field(
        default_factory=lambda: WireCache(status_pb))


# -- records -> messages ------------------------------------------------------------------

def _metadata(r: ContainerRecord) -> pb.ContainerMetadata:
    return pb.ContainerMetadata(name=r.name, attempt=r.attempt)


def container_pb(r: ContainerRecord) -> pb.Container:
    return pb.Container(id=r.id, pod_sandbox_id=r.pod_id, metadata=_metadata(r),
                        image=pb.ImageSpec(image=r.image_id, user_specified_image=r.image),
                        image_ref=r.image_ref, image_id=r.image_id, state=_STATE_PB[r.state],
                        created_at=r.created_at, labels=r.labels, annotations=r.annotations)


def _mount_pb(m: dict) -> pb.Mount:
    opts = m.get("options", [])
    prop = next((_PROPAGATION_PB[o] for o in opts if o in _PROPAGATION_PB),
                pb.PROPAGATION_PRIVATE)
    return pb.Mount(container_path=m["destination"], host_path=m["source"],
                    readonly="ro" in opts, propagation=prop, recursive_read_only="rro" in opts)


def _resources_pb(res: dict) -> pb.ContainerResources:
    cpu, mem = res.get("cpu", {}), res.get("memory", {})
    return pb.ContainerResources(linux=pb.LinuxContainerResources(
        cpu_period=cpu.get("period", 0), cpu_quota=cpu.get("quota", 0),
        cpu_shares=cpu.get("shares", 0), cpuset_cpus=cpu.get("cpus", ""),
        cpuset_mems=cpu.get("mems", ""), memory_limit_in_bytes=mem.get("limit", 0),
        memory_swap_limit_in_bytes=mem.get("swap", 0),
        hugepage_limits=[pb.HugepageLimit(page_size=h["pageSize"], limit=h["limit"])
                         for h in res.get("hugepageLimits", [])],
        unified=res.get("unified", {})))


def status_pb(r: ContainerRecord) -> pb.ContainerStatus:
    return pb.ContainerStatus(
        id=r.id, metadata=_metadata(r), state=_STATE_PB[r.state], created_at=r.created_at,
        started_at=r.started_at, finished_at=r.finished_at, exit_code=r.exit_code,
        image=pb.ImageSpec(image=r.image, user_specified_image=r.image), image_ref=r.image_ref,
        image_id=r.image_id, reason=r.reason, message=r.message, labels=r.labels,
        annotations=r.annotations, mounts=[_mount_pb(m) for m in r.mounts],
        log_path=r.log_path, resources=_resources_pb(r.resources),
        stop_signal=_signal_pb(r.stop_signal),
        user=pb.ContainerUser(linux=pb.LinuxContainerUser(
            uid=r.uid, gid=r.gid,
            supplemental_groups=list(dict.fromkeys([r.gid, *r.additional_gids])))))


def _signal_pb(name: str) -> pb.Signal:
    try:
        return pb.Signal.Value("SIGNAL_" + name.upper())
    except ValueError:
        return pb.SIGNAL_RUNTIME_DEFAULT


def filter_from_pb(f: pb.ContainerFilter) -> ListFilter:
    state = _STATE_DOMAIN.get(f.state.state) if f.HasField("state") else None
    return ListFilter(id_prefix=f.id, state=state, pod_id=f.pod_sandbox_id,
                      labels=tuple(sorted(f.label_selector.items())))


def _required(cid: str) -> str:
    if not cid:
        raise InvalidArgument("container id is required")
    return cid


# -- the RPCs -----------------------------------------------------------------------------

def create_rpc(d: ContainerDeps, req: pb.CreateContainerRequest,
               caller_gone: Callable[[], bool]) -> pb.CreateContainerResponse:
    if not req.HasField("config"):
        raise InvalidArgument("CreateContainer needs a config")
    rec = d.containers.create(req.pod_sandbox_id,
                              container_convert.container_request(req.config), caller_gone)
    return pb.CreateContainerResponse(container_id=rec.id)


def start_rpc(d: ContainerDeps, req: pb.StartContainerRequest) -> pb.StartContainerResponse:
    d.containers.start(_required(req.container_id))
    return pb.StartContainerResponse()


def stop_rpc(d: ContainerDeps, req: pb.StopContainerRequest) -> pb.StopContainerResponse:
    try:
        d.containers.stop(_required(req.container_id), max(0, req.timeout))
    except NotFound:
        pass  # the CRI asks StopContainer to be idempotent, also for a removed container
    return pb.StopContainerResponse()


def remove_rpc(d: ContainerDeps, req: pb.RemoveContainerRequest) -> pb.RemoveContainerResponse:
    d.containers.remove(_required(req.container_id))
    return pb.RemoveContainerResponse()


def status_rpc(d: ContainerDeps,
               req: pb.ContainerStatusRequest) -> pb.ContainerStatusResponse | bytes:
    """The status; without `verbose`, the record's prebuilt answer (wire bytes)."""
    rec = d.containers.get(_required(req.container_id))
    if not req.verbose:
        return d.statuses.item(rec.id, rec)
    resp = pb.ContainerStatusResponse(status=status_pb(rec))
    resp.info["info"] = json.dumps({"pid": rec.pid, "sandboxID": rec.pod_id,
                                    "runtimeSpec": d.containers.spec(rec.id)})
    return resp


def _items(d: ContainerDeps, f: pb.ContainerFilter) -> list[bytes]:
    """Each matching record's Container as a framed field 1 (see crid/server/wire.py)."""
    unfiltered = f == _NO_FILTER
    records = d.containers.list() if unfiltered else d.containers.list(filter_from_pb(f))
    hidden = d.pods.ids_of(DOCKER)
    items = [d.listed.item(r.id, r) for r in records if r.pod_id not in hidden]
    if unfiltered:
        ids = [r.id for r in records]
        d.listed.retain(ids)
        d.statuses.retain(ids)
    return items


_NO_FILTER = pb.ContainerFilter()


def list_rpc(d: ContainerDeps, req: pb.ListContainersRequest) -> bytes:
    """ListContainersResponse on the wire: its field 1 is the repeated containers."""
    return b"".join(_items(d, req.filter))


def stream_rpc(d: ContainerDeps, req: pb.StreamContainersRequest) -> Iterator[bytes]:
    """StreamContainersResponse messages (field 1: containers) of STREAM_CHUNK each."""
    items = _items(d, req.filter)
    for i in range(0, len(items), STREAM_CHUNK):
        yield b"".join(items[i:i + STREAM_CHUNK])


def update_rpc(d: ContainerDeps, req: pb.UpdateContainerResourcesRequest
               ) -> pb.UpdateContainerResourcesResponse:
    if not req.HasField("linux"):
        raise InvalidArgument("UpdateContainerResources needs linux resources")
    d.containers.update_resources(_required(req.container_id),
                                  container_convert.resources(req.linux))
    return pb.UpdateContainerResourcesResponse()


def reopen_log_rpc(d: ContainerDeps, req: pb.ReopenContainerLogRequest
                   ) -> pb.ReopenContainerLogResponse:
    d.containers.reopen_log(_required(req.container_id))
    return pb.ReopenContainerLogResponse()


def exec_sync_rpc(d: ContainerDeps, req: pb.ExecSyncRequest) -> pb.ExecSyncResponse:
    if not 0 <= req.timeout <= MAX_EXEC_TIMEOUT:
        raise InvalidArgument(f"exec timeout {req.timeout}s is out of range")
    res = d.containers.exec_sync(_required(req.container_id), list(req.cmd), req.timeout)
    return pb.ExecSyncResponse(stdout=res.stdout, stderr=res.stderr, exit_code=res.exit_code)


def events_rpc(d: ContainerDeps, req: pb.GetEventsRequest,
               alive: Callable[[], bool]) -> Iterator[pb.ContainerEventResponse]:
    sub = d.events.subscribe()
    for ev in sub.events(alive=alive):
        if ev.pod_id in d.pods.ids_of(DOCKER):
            continue
        records = [r for r in d.containers.list(ListFilter(pod_id=ev.pod_id))
                   if r.pod_id == ev.pod_id]
        if ev.payload is not None and all(r.id != ev.container_id for r in records):
            records.append(ev.payload)  # a DELETED container is no longer listed
        yield pb.ContainerEventResponse(
            container_id=ev.container_id, container_event_type=_EVENT_PB[ev.kind],
            created_at=ev.created_at, pod_sandbox_status=_pod_status(d, ev.pod_id),
            containers_statuses=[status_pb(r) for r in records])


def _pod_status(d: ContainerDeps, pod_id: str) -> pb.PodSandboxStatus | None:
    try:
        return pod_convert.status_pb(d.pods.status(pod_id))
    except NotFound:
        return None


def _pod_id(d: ContainerDeps, pod_id: str) -> str | None:
    try:
        return d.pods.status(pod_id).id.value
    except (NotFound, InvalidArgument):
        return None  # the pod call that follows reports or ignores it, as the CRI says


def stop_pod_containers(d: ContainerDeps, pod_id: str) -> None:
    """StopPodSandbox stops the pod's containers first (SIGKILL: the kubelet has already
    stopped them gracefully)."""
    full = _pod_id(d, pod_id)
    if full is not None:
        d.containers.stop_pod(full)


def remove_pod_containers(d: ContainerDeps, pod_id: str) -> None:
    """RemovePodSandbox removes the pod's containers first."""
    full = _pod_id(d, pod_id)
    if full is not None:
        d.containers.remove_pod(full)
