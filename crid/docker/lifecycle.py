"""Docker-side container lifecycle over the pod and container managers.

create: a DOCKER pod, then its CRI container (the pod is removed if that fails). start of an
exited container: a new CRI container (attempt + 1) in the same pod, as Docker restarts the
same container; the pod, its id, name, network and log stay. remove: the pod with all it holds.
`ExitPolicies` watches exits for AutoRemove and RestartPolicy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from crid import logs
from crid.containers.model import ContainerRequest
from crid.containers.record import ContainerState
from crid.docker import container_volumes as volumes
from crid.docker import ports
from crid.docker.containers_view import DockerContainer, all_containers, find, view
from crid.docker.create_body import BUILTIN_NETWORKS, CreateBody, check_name
from crid.docker.deps import DockerDeps
from crid.docker.errors import BadRequest, Conflict, NotModified
from crid.docker.specs import NAME_ANNOTATION, container_request, pod_spec
from crid.errors import CridError, NotFound
from crid.events import ContainerEvent
from crid.locks import KeyedLocks

log = logs.get("crid.docker")
DEFAULT_STOP_TIMEOUT = 10
_NAMES = threading.Lock()  # name check and pod creation are one step
_STARTS = KeyedLocks()
_ADJECTIVES = ("brave", "calm", "eager", "fond", "keen", "lucid", "merry", "quiet", "sharp")
_NOUNS = ("turing", "hopper", "lovelace", "ritchie", "thompson", "torvalds", "knuth", "liskov")


def _generated_name(taken: set[str]) -> str:
    while True:
        name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}{secrets.randbelow(100)}"
        if name not in taken:
            return name


def create(d: DockerDeps, name: str, body: CreateBody) -> str:
    """Creates the container (not started); returns its id.

    Raises:
        Conflict: the name is in use; NotFound: "No such image" (the CLI then pulls);
        BadRequest / InvalidArgument: a bad field (nothing is left behind).
    """
    image = d.images.status(body.image)
    if image is None:
        raise NotFound(f"No such image: {body.image[:200]}")
    body = volumes.with_image_volumes(body, d.image_config(image.id))
    with _NAMES:
        existing = {c.name: c.id for c in all_containers(d)}
        name = check_name(name) if name else _generated_name(set(existing))
        if name in existing:
            raise Conflict(f'Conflict. The container name "/{name}" is already in use by '
                           f'container "{existing[name]}". You have to remove (or rename) that '
                           "container to be able to reuse that name.")
        body = ports.publish(d, body, d.image_config(image.id))
        log_dir = d.state_dir / "logs" / secrets.token_hex(16)  # not by name: names change
        body, gateway = _network(d, body)
        with d.volumes.lock, volumes.attached(d, body) as body:
            pod_id = d.pods.run(pod_spec(name, body, log_dir, d.cgroup_parent, gateway))
    try:
        if body.network_id:
            d.networks.set_aliases(body.network_id, pod_id.value, body.aliases)
        rec = d.containers.create(pod_id.value, _request(d, name, 0, body, image.id))
        volumes.fill(d, body, Path(rec.rootfs))
    except BaseException:
        d.containers.remove_pod(pod_id.value)
        d.pods.remove(pod_id.value)
        volumes.remove_anonymous(d, body)
        raise
    _event(d, "create", pod_id.value, name, body)
    return pod_id.value


def _network(d: DockerDeps, body: CreateBody) -> tuple[CreateBody, str]:
    """The body with its user-defined network resolved (by name, id or id prefix), and the
    DNS server of that network. Raises NotFound."""
    if body.network_mode in BUILTIN_NETWORKS:
        if body.aliases:
            raise BadRequest("network-scoped aliases are only supported for user-defined "
                             "networks")
        return body, ""
    net = d.networks.get(body.network_mode)
    return dataclasses.replace(body, network_mode=net.name, network_id=net.id), net.gateway


def _request(d: DockerDeps, name: str, attempt: int, body: CreateBody, image_id: str
             ) -> ContainerRequest:
    return container_request(name, attempt, body, image_id,
                             lambda vol: d.volumes.get(vol).mountpoint)


def _event(d: DockerDeps, action: str, docker_id: str, name: str, body: CreateBody,
           **extra: str) -> None:
    d.journal.add("container", action, docker_id, name=name, image=body.image,
                  **body.labels, **extra)


def event(d: DockerDeps, action: str, c: DockerContainer, **extra: str) -> None:
    """Records a container event for `docker events`."""
    _event(d, action, c.id, c.name, c.body, **extra)


def start(d: DockerDeps, ref: str, by_policy: bool = False) -> None:
    """Starts a created container, or runs an exited one again. A client's start undoes its
    stop for the restart policy; a policy's start gives way to a client's stop.

    Raises:
        NotModified: it is running (or, `by_policy`, a client stopped it meanwhile).
    """
    with _STARTS.held(find(d, ref).id):  # a client's and a policy's start, one at a time
        _start(d, ref, by_policy)


def _start(d: DockerDeps, ref: str, by_policy: bool) -> None:
    c = find(d, ref)
    if c.running:
        raise NotModified("container already started")
    if by_policy and STOPPED.marked(d, c.id):
        raise NotModified("container stopped by a client")
    if not by_policy:
        STOPPED.clear(d, c.id)
    record = c.record
    if record is None or record.state is not ContainerState.CREATED:
        record = _recreate(d, c)
    d.containers.start(record.id)
    event(d, "start", c)


def _recreate(d: DockerDeps, c: DockerContainer):  # type: ignore[no-untyped-def]
    attempt = c.record.attempt + 1 if c.record is not None else 0
    image = c.record.image_id if c.record is not None else c.body.image
    if c.record is not None:
        d.containers.remove(c.record.id)
    rec = d.containers.create(c.id, _request(d, c.name, attempt, c.body, image))
    volumes.fill(d, c.body, Path(rec.rootfs))  # a volume emptied meanwhile fills again
    return rec


def stop(d: DockerDeps, ref: str, timeout: int | None) -> None:
    """Stop signal, then SIGKILL after `timeout` seconds (the container's StopTimeout, else
    10). Raises NotModified when it is not running."""
    c = find(d, ref)
    STOPPED.mark(d, c.id)  # also cancels a restart the policy has pending
    if not c.running or c.record is None:
        raise NotModified("container already stopped")
    _thaw(d, c)
    if timeout is None:
        timeout = c.body.stop_timeout if c.body.stop_timeout is not None else DEFAULT_STOP_TIMEOUT
    event(d, "kill", c, signal=str(int(signal.Signals[_stop_signal(c)])))
    d.containers.stop(c.record.id, max(0, timeout))
    event(d, "stop", c)


def _stop_signal(c: DockerContainer) -> str:
    name = (c.record.stop_signal if c.record is not None else "") or "SIGTERM"
    return name if name in signal.Signals.__members__ else "SIGTERM"


def pause(d: DockerDeps, ref: str) -> None:
    """Freezes the container's processes.

    Raises:
        Conflict: it is not running, or already paused.
    """
    c = find(d, ref)
    if not c.running or c.record is None:
        raise Conflict(f"Container {c.id} is not running")
    if c.paused:
        raise Conflict(f"Container {c.id} is already paused")
    d.runtime.pause(c.record.id)
    event(d, "pause", c)


def unpause(d: DockerDeps, ref: str) -> None:
    """Thaws a paused container.

    Raises:
        Conflict: it is not paused.
    """
    c = find(d, ref)
    if not c.paused or c.record is None:
        raise Conflict(f"Container {c.id} is not paused")
    d.runtime.resume(c.record.id)
    event(d, "unpause", c)


def _thaw(d: DockerDeps, c: DockerContainer) -> None:
    """A frozen process cannot act on a signal: stop, kill and rm -f thaw first (as Docker)."""
    if c.paused and c.record is not None:
        d.runtime.resume(c.record.id)


def restart(d: DockerDeps, ref: str, timeout: int | None) -> None:
    with contextlib.suppress(NotModified):
        stop(d, ref, timeout)
    start(d, ref)
    event(d, "restart", find(d, ref))


def kill(d: DockerDeps, ref: str, sig_name: str) -> None:
    """Sends a signal (name or number; SIGKILL by default).

    Raises:
        Conflict: the container is not running; BadRequest: an unknown signal.
    """
    c = find(d, ref)
    sig = _signal(sig_name or "SIGKILL")
    if not c.running or c.record is None:
        raise Conflict(f"Cannot kill container: {c.id}: Container {c.id} is not running")
    STOPPED.mark(d, c.id)
    d.runtime.kill(c.record.id, sig)
    _thaw(d, c)
    event(d, "kill", c, signal=str(sig))


def _signal(name: str) -> int:
    text = name.upper()
    if text.isdigit() and 0 < int(text) < 65:
        return int(text)
    try:
        return int(signal.Signals[text if text.startswith("SIG") else "SIG" + text])
    except KeyError:
        raise BadRequest(f"Invalid signal: {name[:20]}") from None


def remove(d: DockerDeps, ref: str, force: bool, remove_volumes: bool = False) -> None:
    """Removes the container and its pod (and, `remove_volumes`, its anonymous volumes).

    Raises:
        Conflict: it is running and `force` is not set.
    """
    c = find(d, ref)
    if c.running and not force:
        raise Conflict(f"You cannot remove a running container {c.id}. Stop the container "
                       "before attempting removal or force remove")
    _thaw(d, c)
    remove_pod(d, c.id, remove_volumes)


def remove_pod(d: DockerDeps, pod_id: str, remove_volumes: bool = False) -> None:
    """Removes the container's pod, log and stop mark; with `remove_volumes`, its anonymous
    volumes that no other container mounts (`rm -v`, `--rm`)."""
    try:
        c: DockerContainer | None = view(d, d.pods.status(pod_id))
    except (CridError, KeyError):
        c = None
    d.containers.remove_pod(pod_id)
    d.pods.remove(pod_id)
    STOPPED.clear(d, pod_id)
    if c is not None:
        _remove_logs(d, Path(c.pod.spec.log_directory))
        if remove_volumes:
            volumes.remove_anonymous(d, c.body)
        event(d, "destroy", c)
    REMOVALS.record(pod_id, c.record.exit_code if c is not None and c.record else 0)


def _remove_logs(d: DockerDeps, log_dir: Path) -> None:
    """The container's log directory, never anything outside crid's own logs directory."""
    logs_root = (d.state_dir / "logs").resolve()
    if log_dir.resolve().parent == logs_root:
        shutil.rmtree(log_dir, ignore_errors=True)


def rename(d: DockerDeps, ref: str, new_name: str) -> None:
    """Renames the container (running or not).

    Raises:
        Conflict: the name is in use; BadRequest: not a valid name.
    """
    name = check_name(new_name.lstrip("/"))
    with _NAMES:
        c = find(d, ref)
        if name == c.name:
            raise Conflict("Renaming a container with the same name as its current name")
        taken = {x.name: x.id for x in all_containers(d)}
        if name in taken:
            raise Conflict(f'Conflict. The container name "/{name}" is already in use by '
                           f'container "{taken[name]}". You have to remove (or rename) that '
                           "container to be able to reuse that name.")
        d.pods.rename(c.id, name, {NAME_ANNOTATION: name})
    event(d, "rename", find(d, c.id), oldName="/" + c.name)


class _Removals:
    """Exit codes of removed containers, for `wait?condition=removed` (`docker run --rm`
    waits for the removal, which no domain event announces: the pod just goes)."""

    KEEP = 1024

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._codes: dict[str, int] = {}

    def record(self, docker_id: str, code: int) -> None:
        with self._cond:
            self._codes[docker_id] = code
            while len(self._codes) > self.KEEP:
                self._codes.pop(next(iter(self._codes)))
            self._cond.notify_all()

    def wait(self, docker_id: str, exists: Callable[[], bool]) -> int:
        """The exit code once the container is removed (0 if removed unseen)."""
        with self._cond:
            while docker_id not in self._codes:
                if not self._cond.wait(1.0) and not exists():
                    return 0
            return self._codes[docker_id]


REMOVALS = _Removals()


class StoppedMarks:
    """Containers a client stopped or killed: their restart policy stays quiet (Docker's
    HasBeenManuallyStopped). A file each under <state>/stopped, so a daemon restart keeps
    them; a client's start clears the mark."""

    def _path(self, d: DockerDeps, docker_id: str) -> Path:
        return d.state_dir / "stopped" / docker_id

    def mark(self, d: DockerDeps, docker_id: str) -> None:
        path = self._path(d, docker_id)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        path.touch()

    def clear(self, d: DockerDeps, docker_id: str) -> None:
        self._path(d, docker_id).unlink(missing_ok=True)

    def marked(self, d: DockerDeps, docker_id: str) -> bool:
        return self._path(d, docker_id).exists()


STOPPED = StoppedMarks()


class ExitPolicies:
    """Acts on exits of Docker-side containers: AutoRemove removes, RestartPolicy restarts
    (no, always, on-failure[:max], unless-stopped; a container stopped by a client stays).
    On daemon start, containers that exited while it was down get their policy too (and
    `always` restarts even a stopped one, as Docker does on its start)."""

    def __init__(self, d: DockerDeps) -> None:
        self._d = d
        self._sub = d.events.subscribe()
        self._thread: threading.Thread | None = None
        self._running = True

    def start(self) -> None:
        for c in all_containers(self._d):
            if c.record is not None and c.state is ContainerState.EXITED and \
                    self._should_restart(c, STOPPED.marked(self._d, c.id) and
                                         c.body.restart_policy != "always"):
                threading.Thread(target=self._restart, args=(c, True), daemon=True).start()
        self._thread = threading.Thread(target=self._run, name="docker-exits", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._running = False
        self._sub.close()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        with contextlib.suppress(CridError):
            for ev in self._sub.events(alive=lambda: self._running):
                if ev.kind == "STOPPED":
                    self._on_exit(ev)

    def _on_exit(self, ev: ContainerEvent) -> None:
        try:
            c = view(self._d, self._d.pods.status(ev.pod_id))
        except (CridError, KeyError):
            return  # not a Docker-side pod, or removed meanwhile
        if c.record is None or c.record.id != ev.container_id:
            return
        event(self._d, "die", c, exitCode=str(c.record.exit_code))
        try:
            if c.body.auto_remove:  # Docker's --rm takes the anonymous volumes along
                remove_pod(self._d, c.id, remove_volumes=True)
            elif self._should_restart(c, STOPPED.marked(self._d, c.id)):
                threading.Thread(target=self._restart, args=(c,), daemon=True).start()
        except CridError as e:
            log.warning("docker exit policy failed", container=c.id, error=str(e))

    @staticmethod
    def _should_restart(c: DockerContainer, by_client: bool) -> bool:
        policy, code = c.body.restart_policy, c.record.exit_code if c.record else 0
        if by_client or policy == "no":
            return False
        if policy == "on-failure":
            return code != 0 and (not c.body.restart_max or
                                  c.record is not None and c.record.attempt < c.body.restart_max)
        return True

    def _restart(self, c: DockerContainer, now: bool = False) -> None:
        # Docker backs off 100 ms doubling; a fixed short delay keeps a crash loop cheap.
        if not now:
            time.sleep(0.1 * min(2 ** (c.record.attempt if c.record else 0), 100))
        try:
            if now:  # the daemon's start: the policy wins over an old stop of `always`
                STOPPED.clear(self._d, c.id)
            start(self._d, c.id, by_policy=True)
        except NotModified:
            pass
        except CridError as e:
            log.warning("docker restart policy: restart failed", container=c.id, error=str(e))
