"""Docker-side container lifecycle over the pod and container managers.

create: a DOCKER pod, then its CRI container (the pod is removed if that fails). start of an
exited container: a new CRI container (attempt + 1) in the same pod, as Docker restarts the
same container; the pod, its id, name, network and log stay. remove: the pod with all it holds.
`ExitPolicies` watches exits for AutoRemove and RestartPolicy.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable

from crid import logs
from crid.containers.record import ContainerState
from crid.docker.containers_view import DockerContainer, all_containers, find, view
from crid.docker.create_body import CreateBody, check_name
from crid.docker.deps import DockerDeps
from crid.docker.errors import BadRequest, Conflict, NotModified
from crid.docker.specs import container_request, pod_spec
from crid.errors import CridError, NotFound
from crid.events import ContainerEvent

log = logs.get("crid.docker")
DEFAULT_STOP_TIMEOUT = 10
_NAMES = threading.Lock()  # name check and pod creation are one step
_ADJECTIVES = ("brave", "calm", "eager", "fond", "keen", "lucid", "merry", "quiet", "sharp")
_NOUNS = ("turing", "hopper", "lovelace", "ritchie", "thompson", "torvalds", "knuth", "liskov")


def _generated_name(taken: set[str]) -> str:
    import secrets

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
    with _NAMES:
        existing = {c.name: c.id for c in all_containers(d)}
        name = check_name(name) if name else _generated_name(set(existing))
        if name in existing:
            raise Conflict(f'Conflict. The container name "/{name}" is already in use by '
                           f'container "{existing[name]}". You have to remove (or rename) that '
                           "container to be able to reuse that name.")
        log_dir = d.state_dir / "logs" / name
        spec = pod_spec(name, body, log_dir, d.cgroup_parent)
        pod_id = d.pods.run(spec)
    try:
        d.containers.create(pod_id.value, container_request(name, 0, body, image.id))
    except BaseException:
        d.pods.remove(pod_id.value)
        raise
    return pod_id.value


def start(d: DockerDeps, ref: str) -> None:
    """Starts a created container, or runs an exited one again.

    Raises:
        NotModified: it is running.
    """
    c = find(d, ref)
    if c.running:
        raise NotModified("container already started")
    record = c.record
    if record is None or record.state is not ContainerState.CREATED:
        record = _recreate(d, c)
    d.containers.start(record.id)


def _recreate(d: DockerDeps, c: DockerContainer):  # type: ignore[no-untyped-def]
    attempt = c.record.attempt + 1 if c.record is not None else 0
    image = c.record.image_id if c.record is not None else c.body.image
    if c.record is not None:
        d.containers.remove(c.record.id)
    return d.containers.create(c.id, container_request(c.name, attempt, c.body, image))


def stop(d: DockerDeps, ref: str, timeout: int | None) -> None:
    """Stop signal, then SIGKILL after `timeout` seconds (the container's StopTimeout, else
    10). Raises NotModified when it is not running."""
    c = find(d, ref)
    if not c.running or c.record is None:
        raise NotModified("container already stopped")
    ExitPolicies.mark_stopped(c.id)
    if timeout is None:
        timeout = c.body.stop_timeout if c.body.stop_timeout is not None else DEFAULT_STOP_TIMEOUT
    d.containers.stop(c.record.id, max(0, timeout))


def restart(d: DockerDeps, ref: str, timeout: int | None) -> None:
    with contextlib.suppress(NotModified):
        stop(d, ref, timeout)
    start(d, ref)


def kill(d: DockerDeps, ref: str, sig_name: str) -> None:
    """Sends a signal (name or number; SIGKILL by default).

    Raises:
        Conflict: the container is not running; BadRequest: an unknown signal.
    """
    c = find(d, ref)
    sig = _signal(sig_name or "SIGKILL")
    if not c.running or c.record is None:
        raise Conflict(f"Cannot kill container: {c.id}: Container {c.id} is not running")
    ExitPolicies.mark_stopped(c.id)
    d.runtime.kill(c.record.id, sig)


def _signal(name: str) -> int:
    text = name.upper()
    if text.isdigit() and 0 < int(text) < 65:
        return int(text)
    try:
        return int(signal.Signals[text if text.startswith("SIG") else "SIG" + text])
    except KeyError:
        raise BadRequest(f"Invalid signal: {name[:20]}") from None


def remove(d: DockerDeps, ref: str, force: bool) -> None:
    """Removes the container and its pod.

    Raises:
        Conflict: it is running and `force` is not set.
    """
    c = find(d, ref)
    if c.running and not force:
        raise Conflict(f"You cannot remove a running container {c.id}. Stop the container "
                       "before attempting removal or force remove")
    remove_pod(d, c.id)


def remove_pod(d: DockerDeps, pod_id: str) -> None:
    try:
        rec = view(d, d.pods.status(pod_id)).record
    except (CridError, KeyError):
        rec = None
    d.containers.remove_pod(pod_id)
    d.pods.remove(pod_id)
    REMOVALS.record(pod_id, rec.exit_code if rec is not None else 0)


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


class ExitPolicies:
    """Acts on exits of Docker-side containers: AutoRemove removes, RestartPolicy restarts
    (no, always, on-failure[:max], unless-stopped; a container stopped by a client stays)."""

    _stopped_by_client: set[str] = set()
    _lock = threading.Lock()

    def __init__(self, d: DockerDeps) -> None:
        self._d = d
        self._sub = d.events.subscribe()
        self._thread: threading.Thread | None = None
        self._running = True

    @classmethod
    def mark_stopped(cls, docker_id: str) -> None:
        with cls._lock:
            cls._stopped_by_client.add(docker_id)

    @classmethod
    def _take_stopped(cls, docker_id: str) -> bool:
        with cls._lock:
            if docker_id in cls._stopped_by_client:
                cls._stopped_by_client.discard(docker_id)
                return True
            return False

    def start(self) -> None:
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
        by_client = self._take_stopped(c.id)
        try:
            if c.body.auto_remove:
                remove_pod(self._d, c.id)
            elif self._should_restart(c, by_client):
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

    def _restart(self, c: DockerContainer) -> None:
        # Docker backs off 100 ms doubling; a fixed short delay keeps a crash loop cheap.
        time.sleep(0.1 * min(2 ** (c.record.attempt if c.record else 0), 100))
        try:
            start(self._d, c.id)
        except (CridError, NotModified) as e:
            log.warning("docker restart policy: restart failed", container=c.id, error=str(e))
