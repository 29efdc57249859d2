"""RUN steps as containers: a one-container pod of the build's own over the step's image,
run to its end with its output streamed, its writable layer handed to the builder, then
removed with its pod whatever happened.

The pod and container go through the same managers as the kubelet's, so a RUN step gets what
any container gets (the built-in network, DNS, cgroups, seccomp, the monitor's log), and
nothing of it outlives the step.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from crid import logs
from crid.build.errors import BuildCancelled
from crid.containers.manager import ContainerManager
from crid.containers.model import ContainerRequest, Security
from crid.containers.record import ContainerState
from crid.errors import CridError
from crid.events import EventBus, Subscription
from crid.pods import PodFilter
from crid.pods.manager import PodManager
from crid.pods.model import DOCKER, NODE, POD, Metadata, NamespaceOptions, PodSpec
from crid.resources import Resources

log = logs.get("crid.build")

BUILD_NAMESPACE = "crid-build"
BUILD_LABEL = "io.crid.build"
_POLL = 0.05  # seconds between reads of the step's log while it runs


@dataclass(frozen=True)
class RunStep:
    """One RUN: the image it runs on, its argv, extra environment (the build arguments in
    scope), user and working directory as the Dockerfile left them."""

    image_id: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    user: str = ""
    workdir: str = ""


@dataclass(frozen=True)
class StepResult:
    container_id: str
    exit_code: int
    upper: Path  # the container's writable layer: the step's changes
    mountpoints: tuple[str, ...] = ()  # where the runtime mounted over the rootfs


Output = Callable[[bytes], None]
Cancelled = Callable[[], bool]


class StepRunner(Protocol):
    def run(self, step: RunStep, started: Callable[[str], None], output: Output,
            cancelled: Cancelled = lambda: False
            ) -> contextlib.AbstractContextManager[StepResult]:
        """Run the step to its end; the result is valid inside the `with` block only.

        Raises:
            BuildCancelled: `cancelled()` turned true while it ran (nothing is left of it).
        """
        ...


@dataclass(frozen=True)
class RunnerOptions:
    work_root: Path  # step logs
    cgroup_parent: str = ""  # of the step pods ("" = the pods' default)
    host_network: bool = False  # `docker build --network host`
    resources: Resources = Resources()  # of each RUN container (`docker build --memory` ...)


class PodStepRunner:
    """StepRunner over the daemon's pod and container managers.

    Step pods belong to the DOCKER front door (the CRI never lists them, so the kubelet
    never sees, and never kills, a build) in a namespace of their own, so `docker ps` does
    not list them either.
    """

    def __init__(self, pods: PodManager, containers: ContainerManager, events: EventBus,
                 opts: RunnerOptions) -> None:
        self._pods = pods
        self._containers = containers
        self._events = events
        self._opts = opts

    @contextlib.contextmanager
    def run(self, step: RunStep, started: Callable[[str], None], output: Output,
            cancelled: Cancelled = lambda: False) -> Iterator[StepResult]:
        uid = secrets.token_hex(8)
        logs = self._opts.work_root / f"logs-{uid}"
        logs.mkdir(parents=True, mode=0o700)
        with contextlib.ExitStack() as undo:
            undo.callback(_remove_tree, logs)
            pod_id = self._pods.run(self._pod_spec(uid, logs))
            undo.callback(self._remove_pod, str(pod_id))
            rec = self._containers.create(str(pod_id), _request(step, self._opts.resources))
            sub = self._events.subscribe()
            undo.callback(sub.close)
            self._containers.start(rec.id)
            started(rec.id)
            code = follow(self._containers, rec.id, sub, Path(rec.log_path), output, cancelled)
            points = tuple(m["destination"] for m in self._containers.spec(rec.id)["mounts"])
            yield StepResult(rec.id, code, Path(rec.bundle) / "upper", points)

    def reap(self) -> int:
        """Removes the step pods a killed daemon left (a build does not survive a restart);
        returns how many."""
        leftovers = [p for p in self._pods.list_pods(PodFilter(labels={BUILD_LABEL: "true"},
                                                               front_door=DOCKER))
                     if p.spec.metadata.namespace == BUILD_NAMESPACE]
        for pod in leftovers:
            try:
                self._remove_pod(pod.id.value)
            except CridError as e:
                log.warning("removing a leftover build step pod failed", pod=pod.id.value,
                            error=str(e))
        return len(leftovers)

    def _pod_spec(self, uid: str, logs: Path) -> PodSpec:
        network = NODE if self._opts.host_network else POD
        return PodSpec(
            metadata=Metadata(name=f"build-{uid}", uid=uid, namespace=BUILD_NAMESPACE),
            hostname="" if self._opts.host_network else uid[:12], log_directory=str(logs),
            labels={BUILD_LABEL: "true"}, cgroup_parent=self._opts.cgroup_parent,
            namespaces=NamespaceOptions(network=network, pid="CONTAINER", ipc=POD),
            front_door=DOCKER)

    def _remove_pod(self, pod_id: str) -> None:
        self._containers.stop_pod(pod_id)
        self._containers.remove_pod(pod_id)
        self._pods.stop(pod_id)
        self._pods.remove(pod_id)


def follow(containers: ContainerManager, cid: str, sub: Subscription, log: Path,
           output: Output, cancelled: Cancelled) -> int:
    """Streams the step container's output until it exits; its exit code.

    Raises:
        BuildCancelled: `cancelled()` turned true meanwhile (the caller removes it).
    """
    reader = _LogReader(log)
    try:
        def running() -> bool:  # checked at every event and every _POLL seconds
            reader.pump(output)
            if cancelled():
                raise BuildCancelled("the build was cancelled")
            return containers.get(cid).state is not ContainerState.EXITED

        for _event in sub.events(poll=_POLL, alive=running):
            pass
        reader.pump(output)
        return containers.get(cid).exit_code
    finally:
        reader.close()


def _request(step: RunStep, resources: Resources) -> ContainerRequest:
    user, _, group = step.user.partition(":")
    security = Security(
        run_as_user=int(user) if user.isdigit() else None,
        run_as_username="" if user.isdigit() else user,
        run_as_group=int(group) if group.isdigit() else None)
    return ContainerRequest(
        name="step", attempt=0, image=step.image_id, command=step.argv[:1],
        args=step.argv[1:], working_dir=step.workdir, env=step.env, log_path="step.log",
        labels={BUILD_LABEL: "true"}, security=security, resources=resources)


class _LogReader:
    """The step's CRI log file turned back into the bytes the process wrote."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = -1
        self._buf = b""

    def pump(self, output: Output) -> None:
        if self._fd < 0:
            try:
                self._fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                return
        while chunk := os.read(self._fd, 1 << 16):
            self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            # <RFC3339Nano> <stream> <P|F> <text>
            parts = line.split(b" ", 3)
            if len(parts) == 4:
                output(parts[3] + (b"\n" if parts[2] == b"F" else b""))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
