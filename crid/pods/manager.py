"""PodManager: the pod sandbox lifecycle (run, stop, remove, status, list, update, reconcile).

Safe under concurrent calls: one lock per pod serialises everything done to that pod, a short
global lock guards the index; name reservation is its own registry. Records are committed to
the MetadataStore (kind "pod") only once every resource exists, so a pod directory without a
record is the leftover of a crash, removed by `reconcile`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from crid.children import end_process, marked_before_us
from crid.errors import FailedPrecondition, InvalidArgument, NotFound
from crid.locks import KeyedLocks
from crid.pods import validate
from crid.pods.cgroups import combine
from crid.pods.ids import PodId
from crid.pods.infra import infra_alive
from crid.pods.layout import PodPaths
from crid.pods.model import PodSandbox, PodSpec
from crid.pods.namespaces import is_pinned
from crid.pods.setup import SetupDeps, create_sandbox, namespace_kinds
from crid.pods.state import PodState
from crid.pods.teardown import remove_leftovers, remove_sandbox, stop_sandbox
from crid.reservations import ReservationStore
from crid.resources import Resources
from crid.store import MetadataStore

KIND = "pod"


@dataclass(frozen=True)
class PodOptions:
    run_root: Path
    handlers: frozenset[str]       # runtime handler names accepted ("" is the default)
    default_handler: str = "crid"
    shm_size: int = 64 * 1024 * 1024
    retry_wait: float = 30.0       # how long a retried create waits for the first one


@dataclass(frozen=True)
class PodFilter:
    id_prefix: str = ""
    state: PodState | None = None
    labels: dict[str, str] = field(default_factory=dict)
    front_door: str | None = None  # None: every pod (start-up, metrics of the whole node)

    def matches(self, pod: PodSandbox) -> bool:
        return ((self.front_door is None or pod.spec.front_door == self.front_door)
                and pod.id.value.startswith(self.id_prefix)
                and (self.state is None or pod.state == self.state)
                and all(pod.spec.labels.get(k) == v for k, v in self.labels.items()))


class PodManager:
    """The pod sandboxes of one daemon."""

    def __init__(self, opts: PodOptions, store: MetadataStore, deps: SetupDeps) -> None:
        self._opts = opts
        self._store = store
        self._deps = deps
        self._names: ReservationStore[PodId] = ReservationStore()
        self._index_lock = threading.Lock()
        self._pods: dict[str, PodSandbox] = {}
        self._locks = KeyedLocks()  # one per pod: everything done to that pod
        for rec in store.all(KIND):
            pod = PodSandbox.from_record(rec)
            self._pods[pod.id.value] = pod
            self._names.hold(pod.spec.metadata, pod.id)

    # -- RunPodSandbox -------------------------------------------------------------------

    def run(self, spec: PodSpec, caller_gone: Callable[[], bool] = lambda: False) -> PodId:
        """Creates a READY sandbox and returns its id.

        `caller_gone` tells, once the sandbox exists, whether the RPC that asked for it has
        already given up (deadline); such a sandbox is handed to the kubelet's retry.

        Raises:
            InvalidArgument: a bad field (nothing is created).
            AlreadyExists: the name is reserved by another sandbox (its id in the message).
            Internal subtypes / network errors: a step failed (everything done is undone).
        """
        validate.validate(spec, self._opts.handlers, self._deps.cgroup_driver)
        res, mine = self._names.reserve(spec.metadata, PodId.new, self._opts.retry_wait)
        if not mine:
            return res.holder
        ok = False
        try:
            with self._locks.held(res.holder.value):
                pod = create_sandbox(res.holder, spec, self._deps)
                self._commit(pod)
            ok = True
        finally:
            self._names.finish(spec.metadata, res, ok, abandoned=ok and caller_gone())
        return res.holder

    # -- Stop / Remove -------------------------------------------------------------------

    def stop(self, pod_id: str) -> None:
        """Stops the sandbox: its processes end, its network is released. Idempotent; an
        unknown id is not an error (the CRI asks for that)."""
        with self._current(pod_id, missing_ok=True) as pod:
            if pod is None:
                return
            stop_sandbox(pod, self._deps)
            if pod.state != PodState.NOTREADY:
                self._commit(pod.with_state(pod.state.next_on_stop))

    def remove(self, pod_id: str) -> None:
        """Stops the sandbox if needed and releases everything it holds. Idempotent."""
        with self._current(pod_id, missing_ok=True) as pod:
            if pod is None:
                return
            remove_sandbox(pod, self._deps)
            self._store.delete(KIND, pod.id.value)
            with self._index_lock:
                self._pods.pop(pod.id.value, None)
            self._names.release(pod.spec.metadata, pod.id)

    # -- Status / List / Update ----------------------------------------------------------

    def status(self, pod_id: str) -> PodSandbox:
        """The sandbox with its current state.

        Raises:
            NotFound: no sandbox has this id (or unique id prefix).
        """
        pod = self._find(pod_id, missing_ok=False)
        assert pod is not None
        if pod.state == PodState.READY and pod.infra is not None and not infra_alive(pod.infra):
            # The pod's pid 1 died (killed from outside): the shared PID namespace is gone.
            with self._locks.held(pod.id.value):
                current = self._pods.get(pod.id.value)
                if current is not None and current.state == PodState.READY:
                    pod = current.with_state(PodState.NOTREADY)
                    self._commit(pod)
        return pod

    def paths(self, pod: PodSandbox) -> PodPaths:
        return PodPaths.of(self._opts.run_root, pod.id.value)

    def namespace_paths(self, pod: PodSandbox) -> dict[str, str]:
        """kind -> pinned path for the namespaces the pod owns (for containers to join)."""
        paths = self.paths(pod)
        return {k: str(paths.ns(k)) for k in namespace_kinds(pod.spec)}

    def list_pods(self, flt: PodFilter = PodFilter()) -> list[PodSandbox]:
        """Sandboxes matching flt, oldest first (answered from memory)."""
        with self._index_lock:
            pods = list(self._pods.values())
        return sorted((p for p in pods if flt.matches(p)), key=lambda p: p.created_at)

    def ids_of(self, front_door: str) -> set[str]:
        """Ids of the pods of one front door (to keep the other door's containers apart)."""
        with self._index_lock:
            return {i for i, p in self._pods.items() if p.spec.front_door == front_door}

    def update_resources(self, pod_id: str, overhead: Resources | None,
                         resources: Resources | None) -> None:
        """Applies new pod-level overhead/resources to the pod cgroup (UpdatePodSandboxResources).

        Raises:
            NotFound, FailedPrecondition (the pod is not READY), InvalidArgument.
        """
        with self._current(pod_id, missing_ok=False) as pod:
            if pod is None:
                raise NotFound(f"pod sandbox {pod_id} was removed")
            if not pod.state.can("update"):
                raise FailedPrecondition(f"pod sandbox {pod.id.short} is {pod.state.value}")
            combined = combine(overhead, resources)
            if combined is not None and pod.cgroup:
                self._deps.cgroups.update(pod.cgroup, combined)
            spec = dataclasses.replace(pod.spec, overhead=overhead, resources=resources)
            self._commit(dataclasses.replace(pod, spec=spec))

    def rename(self, pod_id: str, name: str, annotations: dict[str, str]) -> PodSandbox:
        """Gives the pod a new Metadata.name (and merges `annotations`), the old name freed
        only once the new one is held (the Docker front door's `docker rename`).

        Raises:
            NotFound; AlreadyExists: the new metadata is reserved.
        """
        with self._current(pod_id, missing_ok=False) as pod:
            if pod is None:
                raise NotFound(f"pod sandbox {pod_id} was removed")
            md = dataclasses.replace(pod.spec.metadata, name=name)
            res, _ = self._names.reserve(md, lambda: pod.id, 0)
            self._names.finish(md, res, ok=True, abandoned=False)
            spec = dataclasses.replace(pod.spec, metadata=md,
                                       annotations={**pod.spec.annotations, **annotations})
            renamed = dataclasses.replace(pod, spec=spec)
            try:
                self._commit(renamed)
            except BaseException:
                self._names.release(md, pod.id)
                raise
            self._names.release(pod.spec.metadata, pod.id)
            return renamed

    # -- start-up ------------------------------------------------------------------------

    def reconcile(self) -> list[str]:
        """On daemon start: pods whose pins or infra are gone become NOTREADY; the leftovers
        of a RunPodSandbox that never committed are removed. Returns what it changed."""
        changed = []
        for pod in self.list_pods():
            if pod.state == PodState.READY and not self._alive(pod):
                self._commit(pod.with_state(PodState.NOTREADY))
                changed.append(f"notready {pod.id.value}")
        changed += self._end_unrecorded_holders()
        pods_dir = self._opts.run_root / "pods"
        if pods_dir.is_dir():
            for d in pods_dir.iterdir():
                if d.name not in self._pods:
                    remove_leftovers(PodPaths(d), self._deps)
                    changed.append(f"leftover {d.name}")
        released = self._deps.network.release_orphans(set(self._pods))
        return changed + [f"network {i}" for i in released]

    def _end_unrecorded_holders(self) -> list[str]:
        """Infra processes (and their unshare) a killed daemon started but never recorded:
        marked with their pod's id (crid.children), of a pod no record has, or of a pod
        whose recorded infra process is not alive (so not theirs)."""
        ended = []
        for p in marked_before_us(self._opts.run_root):
            pod = self._pods.get(p.pod_id) if p.pod_id else None
            if p.pod_id and (pod is None or pod.infra is None or not infra_alive(pod.infra)):
                end_process(p)
                ended.append(f"holder {p.pid} of {p.pod_id}")
        return ended

    def _alive(self, pod: PodSandbox) -> bool:
        paths = self.paths(pod)
        pinned = all(is_pinned(paths.ns(k)) for k in namespace_kinds(pod.spec))
        return pinned and (pod.infra is None or infra_alive(pod.infra))

    # -- helpers -------------------------------------------------------------------------

    def _commit(self, pod: PodSandbox) -> None:
        self._store.put(KIND, pod.id.value, pod.to_record())
        with self._index_lock:
            self._pods[pod.id.value] = pod

    def _find(self, pod_id: str, missing_ok: bool) -> PodSandbox | None:
        if not pod_id:
            raise InvalidArgument("pod sandbox id is required")
        with self._index_lock:
            pod = self._pods.get(pod_id)
            if pod is None and len(pod_id) < 64:
                hits = [p for i, p in self._pods.items() if i.startswith(pod_id)]
                if len(hits) > 1:
                    raise InvalidArgument(f"pod sandbox id prefix {pod_id!r} is ambiguous")
                pod = hits[0] if hits else None
        if pod is None and not missing_ok:
            raise NotFound(f"pod sandbox {pod_id[:100]!r} not found")
        return pod

    @contextlib.contextmanager
    def _current(self, pod_id: str, missing_ok: bool) -> Iterator[PodSandbox | None]:
        """The pod, under its lock and as it is once the lock is held (None: unknown with
        ``missing_ok``, or removed while waiting for the lock).

        Raises:
            NotFound: an unknown id without ``missing_ok``.
        """
        pod = self._find(pod_id, missing_ok)
        if pod is None:
            yield None
            return
        with self._locks.held(pod.id.value):
            yield self._pods.get(pod.id.value)


def handler_set(default: str, extra: Collection[str] = ()) -> frozenset[str]:
    """The runtime handler names a pod may ask for: "", the default, and any others."""
    return frozenset({"", default, *extra})
