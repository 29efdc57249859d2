"""Container lifecycle: create, start, stop, remove, status and list, as the kubelet drives it.

The manager owns records (persisted in the metadata store, listed from memory), name
reservations, and each container's directory under <root>/containers/<id>. It reaches the
runtime, images and pods through small Protocols (crid/containers/seams.py).

Operations that change a container (start, remove, resource updates) hold that container's own
lock and re-read its record once they hold it, as containerd's setContainerStarting keeps start
and remove apart: a start can never save back the record a concurrent remove just deleted.
Status and list take no per-container lock; exits are recorded under the index lock alone, so
the exit watcher never waits behind a slow operation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crid.containers import capabilities, inputs
from crid.containers import rootfs as rootfs_mod
from crid.containers.model import (
    ContainerRequest,
    ImageConfig,
    NsMode,
)
from crid.containers.record import ContainerRecord, ContainerState
from crid.containers.runtime_errors import runtime_errors
from crid.containers.seams import (
    ContainerRuntime,
    ExecResult,
    ExitInfo,
    ImageLookup,
    PodForContainers,
    PodLookup,
)
from crid.containers.spec import (
    HostDevice,
    PodContext,
    SpecInputs,
    generate_spec,
    resources_oci,
)
from crid.containers.users import resolve_user
from crid.errors import FailedPrecondition, InvalidArgument, NotFound
from crid.events import ContainerEvent, EventBus
from crid.locks import KeyedLocks
from crid.reservations import ReservationStore
from crid.resources import Resources
from crid.store import MetadataStore
from runtime.api import config_from_doc
from runtime.linux.atomic import write_atomic

KIND = "container"


@dataclass(frozen=True)
class ContainerOptions:
    root: Path  # <root>/containers
    forbidden_roots: tuple[Path, ...]  # crid's own state: never a mount or device source
    volume_root: Path | None = None  # in that state, but each <name>/_data below is mountable
    cgroup_driver: str = "cgroupfs"
    apparmor_enabled: bool = False
    retry_wait: float = 30.0  # how long a retried create waits for the first one
    grantable_caps: frozenset[str] = frozenset(capabilities.ALL_CAPS)  # the engine's bounding set


@dataclass(frozen=True)
class ListFilter:
    id_prefix: str = ""
    state: ContainerState | None = None
    pod_id: str = ""
    labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Resolved:
    devices: tuple[HostDevice, ...]
    seccomp: dict[str, Any] | None


class ContainerManager:
    def __init__(self, opts: ContainerOptions, store: MetadataStore, runtime: ContainerRuntime,
                 images: ImageLookup, pods: PodLookup, events: EventBus) -> None:
        self._o, self._store, self._rt = opts, store, runtime
        self._images, self._pods, self._events = images, pods, events
        self._lock = threading.RLock()  # the index (_records, _specs, _exec_templates)
        self._ops = KeyedLocks()  # one lock per container: its changing operations
        # Traversable, not listable: a user-namespaced container's root (a host uid of its
        # pod's range) walks down to its rootfs (see `_container_dir_mode`).
        opts.root.mkdir(parents=True, exist_ok=True, mode=0o711)
        opts.root.chmod(0o711)
        self._records = {r["id"]: ContainerRecord.from_dict(r) for r in store.all(KIND)}
        self._names: ReservationStore[str] = ReservationStore()
        # id -> config.json as created, and its process, the template of execs (probes exec
        # every few seconds): it never changes after create; read from the bundle once after a
        # restart. Kept as its bytes (a decoded spec takes some five times the memory).
        self._specs: dict[str, bytes] = {}
        self._exec_templates: dict[str, dict[str, Any]] = {}
        self._exit_waits: dict[str, threading.Event] = {}  # id -> set when its exit is marked
        for r in self._records.values():
            self._names.hold(_name_key(r.pod_id, r.name, r.attempt), r.id)

    # --- queries ---------------------------------------------------------------------------

    def get(self, cid: str) -> ContainerRecord:
        """The record of the container whose id is cid or starts with it.

        Raises:
            NotFound: no container matches; InvalidArgument: the prefix is ambiguous.
        """
        with self._lock:
            if cid in self._records:
                return self._records[cid]
            hits = [r for i, r in self._records.items() if cid and i.startswith(cid)]
        if len(hits) == 1:
            return hits[0]
        if hits:
            raise InvalidArgument(f"container id prefix {cid!r} is ambiguous")
        raise NotFound(f"container {cid!r} does not exist")

    def list(self, f: ListFilter = ListFilter()) -> list[ContainerRecord]:
        with self._lock:
            records = list(self._records.values())
        return [r for r in records if _matches(r, f)]

    def image_ids_in_use(self) -> set[str]:
        with self._lock:
            return {r.image_id for r in self._records.values()}

    # --- create ----------------------------------------------------------------------------

    def create(self, pod_id: str, req: ContainerRequest,
               caller_gone: Callable[[], bool] = lambda: False) -> ContainerRecord:
        """Creates a container in a ready pod; nothing is left behind when it fails.

        A retry of a create still in flight waits for it; one that outlived its RPC
        (`caller_gone()` true once done) is handed back to the kubelet's retry of the same
        name instead of failing it with AlreadyExists (crid/reservations.py).

        Raises:
            NotFound: the pod or image does not exist; FailedPrecondition: the pod is not
            ready; AlreadyExists: the name is taken; InvalidArgument: a bad request field.
        """
        if not pod_id:
            raise InvalidArgument("pod sandbox id is required")
        pod = self._pods.container_context(pod_id)
        key = _name_key(pod.context.pod_id, req.name, req.attempt)
        res, mine = self._names.reserve(key, lambda: secrets.token_hex(32), self._o.retry_wait)
        if not mine:
            return self.get(res.holder)
        ok = False
        try:
            rec = self._create(res.holder, pod, req)
            ok = True
        finally:
            self._names.finish(key, res, ok, abandoned=ok and caller_gone())
        self._publish(rec, "CREATED")
        return rec

    def _create(self, cid: str, pod: PodForContainers, req: ContainerRequest) -> ContainerRecord:
        req = inputs.with_pod_namespaces(req, pod)
        if pod.context.userns_path:
            inputs.check_reachable_from_userns(self._o.root)
        image = self._images.status(req.image)
        if image is None:
            raise NotFound(f"image {req.image!r} is not present: pull it first")
        resolved = self._resolve(req)
        log_path = inputs.log_path(pod.log_directory, req.log_path)
        cdir = self._o.root / cid
        with contextlib.ExitStack() as undo:
            cdir.mkdir(parents=True, mode=0o700)
            cdir.chmod(_container_dir_mode(pod.context.userns_path))
            undo.callback(rootfs_mod.remove_container_dir, cdir)
            rootfs = rootfs_mod.mount_rootfs(self._images.layer_dirs(image.id), cdir,
                                             _pod_userns(pod.context))
            spec, user, img = self._spec(cid, req, image, pod, rootfs, resolved)
            with runtime_errors(f"creating container {cid}"):
                config = config_from_doc(spec)  # the one parse: the runtime hands it down
            # not durable: a power loss ends the container anyway, and the record (in the
            # metadata store) is what a restart reconciles from
            write_atomic(cdir / "config.json", config.raw, durable=False)
            if log_path:
                os.makedirs(os.path.dirname(log_path), mode=0o755, exist_ok=True)
            pid = self._rt.create(cid, cdir, config, log_path, req.stdin, req.stdin_once,
                                  req.tty)
            self._remember_spec(cid, config.raw, spec["process"])
            undo.callback(self._rt.delete, cid, True)
            rec = dataclasses.replace(self._record(cid, pod.context.pod_id, req, image, cdir,
                                                   log_path, spec, user, img), pid=pid)
            self._save(rec)
            undo.pop_all()
        return rec

    def _spec(self, cid: str, req: ContainerRequest, image: Any, pod: PodForContainers,
              rootfs: Path, resolved: _Resolved) -> tuple[dict[str, Any], Any, ImageConfig]:
        img = ImageConfig.from_oci(self._images.config(image.id))
        sec = req.security
        user = resolve_user(inputs.user_db(rootfs), run_as_user=sec.run_as_user,
                            run_as_username=sec.run_as_username, run_as_group=sec.run_as_group,
                            image_user=img.user, supplemental=sec.supplemental_groups,
                            strict=sec.strict_supplemental_groups)
        target_pid = 0
        if sec.namespaces.pid == NsMode.TARGET:
            target_pid = self.get(sec.namespaces.target_id).pid
        spec_inputs = SpecInputs(
            container_id=cid, request=req, image=img, image_name=req.image, image_id=image.id,
            pod=pod.context, user=user, rootfs=str(rootfs),
            cgroups_path=inputs.cgroups_path(pod.cgroup_parent, cid, self._o.cgroup_driver),
            devices=resolved.devices, localhost_seccomp=resolved.seccomp, target_pid=target_pid,
            apparmor_enabled=self._o.apparmor_enabled, grantable_caps=self._o.grantable_caps)
        capabilities.log_ungranted(cid, req.security, self._o.grantable_caps)
        return generate_spec(spec_inputs), user, img

    def _resolve(self, req: ContainerRequest) -> _Resolved:
        """Host-side checks that need nothing created yet."""
        inputs.check_mount_sources(req, self._o.forbidden_roots, self._o.volume_root)
        return _Resolved(tuple(inputs.host_device(d) for d in req.devices),
                         inputs.localhost_profile(req))

    def _record(self, cid: str, pod_id: str, req: ContainerRequest, image: Any, cdir: Path,
                log_path: str, spec: dict[str, Any], user: Any,
                img: ImageConfig) -> ContainerRecord:
        return ContainerRecord(
            id=cid, pod_id=pod_id, name=req.name, attempt=req.attempt, image=req.image,
            image_id=image.id, image_ref=(image.repo_digests or (image.id,))[0],
            created_at=time.time_ns(), labels=dict(req.labels),
            annotations=dict(req.annotations), log_path=log_path, bundle=str(cdir),
            rootfs=str(cdir / "rootfs"),
            stop_signal=req.stop_signal or img.stop_signal or "SIGTERM",
            mounts=[m for m in spec["mounts"] if m["type"] == "bind"],
            resources=spec["linux"]["resources"], uid=user.uid, gid=user.gid,
            additional_gids=list(user.additional_gids), tty=req.tty, stdin=req.stdin,
            stdin_once=req.stdin_once, cgroups_path=spec["linux"]["cgroupsPath"],
            run_as_username=user.username if req.security.run_as_username else "")

    # --- start / stop / remove -------------------------------------------------------------

    def start(self, cid: str) -> ContainerRecord:
        """Starts a created container.

        Raises:
            NotFound; FailedPrecondition: the container is not CREATED.
        """
        with self._current(cid) as rec:
            if not rec.state.can_start():
                raise FailedPrecondition(f"container {rec.id} is {rec.state.name.lower()}, "
                                         "not created")
            started_at = time.time_ns()  # before the release: a quick exit must not precede it
            self._rt.start(rec.id)
            with self._lock:  # the exit watcher may have recorded a quick exit meanwhile
                current = self._records[rec.id]
                if current.state is ContainerState.CREATED:
                    current = self._save(current.moved_to(ContainerState.RUNNING,
                                                          started_at=started_at))
        self._publish(current, "STARTED")
        exit_info = self._rt.exit_status(rec.id)
        if exit_info is not None:  # it already ended while we were recording the start
            current = self.mark_exited(rec.id, exit_info) or current
        return current

    def stop(self, cid: str, timeout: int) -> None:
        """Sends the stop signal, then SIGKILL after timeout seconds; idempotent."""
        rec = self.get(cid)
        if rec.state is ContainerState.EXITED:
            return
        if rec.state is ContainerState.RUNNING and timeout > 0:
            self._rt.kill(rec.id, _signal_number(rec.stop_signal))
            info = self._await_exit(rec.id, timeout)
            if info is not None:
                self.mark_exited(rec.id, info)
                return
        self._rt.kill(rec.id, signal.SIGKILL)
        info = self._await_exit(rec.id, 30)
        if info is None:
            if self._rt.is_running(rec.id):
                raise FailedPrecondition(f"container {rec.id} did not die after SIGKILL")
            info = ExitInfo(137, message="process gone without an exit record")
        self.mark_exited(rec.id, info)

    def _await_exit(self, cid: str, timeout: float) -> ExitInfo | None:
        """The container's exit, as soon as it is known: the exit watcher's inotify marks it
        (``mark_exited`` wakes this wait, no polling), or its monitor has written it already;
        None after ``timeout`` seconds. The monitor records an exit once nothing of the
        container is left (``runtime.monitor.leftovers``), so a stop returns only then."""
        with self._lock:
            event = self._exit_waits.setdefault(cid, threading.Event())
        deadline = time.monotonic() + timeout
        while True:
            rec = self._records.get(cid)
            if rec is None:  # removed meanwhile
                return ExitInfo(137)
            if rec.state is ContainerState.EXITED:  # marked already: mark_exited ignores this
                return ExitInfo(rec.exit_code, finished_at=rec.finished_at)
            info = self._rt.exit_status(cid)
            left = deadline - time.monotonic()
            if info is not None or left <= 0:
                return info
            event.wait(left)

    def remove(self, cid: str) -> None:
        """Kills if running, removes the runtime state, rootfs and record; idempotent."""
        try:
            with self._current(cid) as rec:
                self._remove(rec)
        except _Gone:
            return
        self._names.release(_name_key(rec.pod_id, rec.name, rec.attempt), rec.id)
        self._publish(rec, "DELETED")

    def _remove(self, rec: ContainerRecord) -> None:
        if rec.state in (ContainerState.RUNNING, ContainerState.CREATED):
            self.stop(rec.id, 0)
        self._rt.delete(rec.id, True)
        rootfs_mod.remove_container_dir(Path(rec.bundle))
        with self._lock:
            self._store.delete(KIND, rec.id)
            self._records.pop(rec.id, None)
            self._specs.pop(rec.id, None)
            self._exec_templates.pop(rec.id, None)
            self._exit_waits.pop(rec.id, None)

    def stop_pod(self, pod_id: str, timeout: int = 0) -> None:
        """Stops every container of the pod (StopPodSandbox)."""
        for rec in self.list(ListFilter(pod_id=pod_id)):
            if rec.pod_id == pod_id:
                self.stop(rec.id, timeout)

    def remove_pod(self, pod_id: str) -> None:
        """Removes every container of the pod (RemovePodSandbox)."""
        for rec in self.list(ListFilter(pod_id=pod_id)):
            if rec.pod_id == pod_id:
                self.remove(rec.id)

    # --- running containers ------------------------------------------------------------------

    def update_resources(self, cid: str, resources: Resources) -> ContainerRecord:
        """Applies new limits to the live cgroup and records them.

        Raises:
            NotFound; FailedPrecondition: the container has exited.
        """
        with self._current(cid) as rec:
            if rec.state is ContainerState.EXITED:
                raise FailedPrecondition(f"container {rec.id} has exited: "
                                         "cannot update resources")
            oci = resources_oci(resources, rec.resources)
            self._rt.update(rec.id, oci)
            with self._lock:
                return self._save(dataclasses.replace(self._records[rec.id], resources=oci))

    def reopen_log(self, cid: str) -> None:
        """Has the monitor reopen the log file (after the kubelet rotated it).

        Raises:
            NotFound; FailedPrecondition: the container is not running.
        """
        rec = self.get(cid)
        if rec.state is not ContainerState.RUNNING:
            raise FailedPrecondition(f"container {rec.id} is not running: cannot reopen its log")
        self._rt.reopen_log(rec.id)

    def exec_sync(self, cid: str, cmd: Sequence[str], timeout: float) -> ExecResult:
        """Runs cmd in the container with its user, env, cwd and security settings.

        Raises:
            NotFound; InvalidArgument: empty command; FailedPrecondition: not running;
            DeadlineExceeded: the timeout passed (the process was killed and reaped).
        """
        if not cmd:
            raise InvalidArgument("exec needs a command")
        rec = self.get(cid)
        if not rec.state.can_exec():
            raise FailedPrecondition(f"container {rec.id} is not running")
        process = self.exec_process(rec.id)
        process.update(args=list(cmd), terminal=False)
        return self._rt.exec_sync(rec.id, process, timeout)

    def exec_process(self, cid: str) -> dict[str, Any]:
        """The container's OCI process object, the template of its execs. A shallow copy: set
        keys freely, but replace nested lists and objects rather than change them.

        Raises:
            NotFound: no such container, or its spec cannot be read.
        """
        rec = self.get(cid)
        template = self._exec_templates.get(rec.id)
        if template is None:
            template = self.spec(rec.id)["process"]
        return dict(template)

    def spec(self, cid: str) -> dict[str, Any]:
        """The container's OCI config.json, from memory (read from its bundle once after a
        restart); a fresh copy.

        Raises:
            NotFound: no such container, or its spec cannot be read.
        """
        rec = self.get(cid)
        raw = self._specs.get(rec.id)
        try:
            if raw is None:
                raw = (Path(rec.bundle) / "config.json").read_bytes()
                spec = json.loads(raw)
                self._remember_spec(rec.id, raw, spec["process"])
                return spec  # type: ignore[no-any-return]
            return json.loads(raw)  # type: ignore[no-any-return]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise NotFound(f"container {rec.id}: its spec cannot be read: {e}") from e

    def _remember_spec(self, cid: str, raw: bytes, process: dict[str, Any]) -> None:
        with self._lock:
            self._specs[cid] = raw
            self._exec_templates[cid] = process

    # --- exits and start-up ----------------------------------------------------------------------

    def mark_exited(self, cid: str, info: ExitInfo) -> ContainerRecord | None:
        """Records an exit (from the exit watcher or a stop); a second report is ignored."""
        with self._lock:
            rec = self._records.get(cid)
            if rec is None or rec.state is ContainerState.EXITED:
                return rec
            reason = "OOMKilled" if info.oom_killed else (
                "Completed" if info.exit_code == 0 else "Error")
            rec = self._save(rec.moved_to(ContainerState.EXITED, exit_code=info.exit_code,
                                          finished_at=info.finished_at or time.time_ns(),
                                          reason=reason, message=info.message))
            waiting = self._exit_waits.pop(cid, None)
        if waiting is not None:
            waiting.set()
        self._publish(rec, "STOPPED")
        return rec

    def reconcile(self) -> Sequence[str]:
        """On daemon start: containers whose process is gone are marked exited with their
        recorded status; directories of creates that never committed are removed."""
        changed = []
        for rec in self.list():
            if rec.state is ContainerState.EXITED:
                continue
            info = self._rt.exit_status(rec.id)
            if info is None and not self._rt.is_running(rec.id):
                info = ExitInfo(255, message="the container's monitor is gone; exit unknown")
            if info is not None:
                self.mark_exited(rec.id, info)
                changed.append(f"exited {rec.id}")
        if self._o.root.is_dir():
            for d in self._o.root.iterdir():
                if d.name not in self._records:
                    self._rt.delete(d.name, True)
                    rootfs_mod.remove_container_dir(d)
                    changed.append(f"leftover {d.name}")
        return changed

    # --- helpers ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _current(self, cid: str) -> Iterator[ContainerRecord]:
        """The container's record under the container's own lock, as it is once the lock is
        held.

        Raises:
            _Gone (a NotFound): no such container, or removed while waiting for the lock;
            InvalidArgument: an ambiguous id prefix.
        """
        try:
            rec = self.get(cid)
        except NotFound as e:
            raise _Gone(str(e)) from e
        with self._ops.held(rec.id):
            current = self._records.get(rec.id)
            if current is None:
                raise _Gone(f"container {rec.id} was removed")
            yield current

    def _save(self, rec: ContainerRecord) -> ContainerRecord:
        with self._lock:
            self._store.put(KIND, rec.id, rec.to_dict())
            self._records[rec.id] = rec
        return rec

    def _publish(self, rec: ContainerRecord, kind: str) -> None:
        self._events.publish(ContainerEvent(rec.id, kind, time.time_ns(), rec.pod_id, rec))


def _pod_userns(pod: PodContext) -> rootfs_mod.PodUserns | None:
    if not pod.userns_path:
        return None
    return rootfs_mod.PodUserns(pod.userns_path, *pod.userns_root)


def _container_dir_mode(userns_path: str) -> int:
    """0700, or 0711 in a pod with a user namespace: its container's init, root only over
    its own range, must reach <cdir>/rootfs by path to mount it (as containerd's bundle
    directories are 0711); the writable layer beside it stays unlistable."""
    return 0o711 if userns_path else 0o700


class _Gone(NotFound):
    """The container does not exist, or was removed while the caller waited for its lock."""


def _name_key(pod_id: str, name: str, attempt: int) -> str:
    return f"{name}_{pod_id}_{attempt}"


def _signal_number(name: str) -> int:
    name = name.upper()
    if name.isdigit():
        return int(name)
    try:
        return int(signal.Signals[name if name.startswith("SIG") else "SIG" + name])
    except KeyError:
        return int(signal.SIGTERM)


def _matches(r: ContainerRecord, f: ListFilter) -> bool:
    return ((not f.id_prefix or r.id.startswith(f.id_prefix))
            and (f.state is None or r.state is f.state)
            and (not f.pod_id or r.pod_id.startswith(f.pod_id))
            and all(r.labels.get(k) == v for k, v in f.labels))
