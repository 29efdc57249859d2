"""Docker-side containers found in the domain: a DOCKER pod and its latest CRI container.

A Docker container's id is its pod's id (it stays when a restart replaces the CRI container
inside); its name is the pod's Metadata.name. Clients name containers by id, unique id
prefix or name (with or without the leading "/").
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from crid.containers.manager import ListFilter
from crid.containers.record import ContainerRecord, ContainerState
from crid.docker.create_body import CreateBody
from crid.docker.deps import DockerDeps
from crid.docker.errors import BadRequest
from crid.docker.specs import CONFIG_ANNOTATION, NAMESPACE
from crid.errors import NotFound
from crid.pods import PodFilter, PodSandbox
from crid.pods.model import DOCKER


@dataclass(frozen=True)
class DockerContainer:
    pod: PodSandbox
    record: ContainerRecord | None  # None: its CRI container is gone (a failed restart)
    body: CreateBody
    paused: bool = False  # its cgroup is frozen (docker pause)

    @property
    def id(self) -> str:
        return self.pod.id.value

    @property
    def name(self) -> str:
        return self.pod.spec.metadata.name

    @property
    def state(self) -> ContainerState:
        return self.record.state if self.record is not None else ContainerState.EXITED

    @property
    def running(self) -> bool:
        return self.state is ContainerState.RUNNING


def docker_pods(d: DockerDeps) -> list[PodSandbox]:
    # Build step pods are DOCKER pods too (the kubelet must not see them), in a namespace
    # of their own: they are not containers a client made.
    return [p for p in d.pods.list_pods(PodFilter(front_door=DOCKER))
            if p.spec.metadata.namespace == NAMESPACE]


def _latest(records: list[ContainerRecord]) -> ContainerRecord | None:
    return max(records, key=lambda r: (r.attempt, r.created_at), default=None)


def view(d: DockerDeps, pod: PodSandbox) -> DockerContainer:
    records = [r for r in d.containers.list(ListFilter(pod_id=pod.id.value))
               if r.pod_id == pod.id.value]
    body = CreateBody.from_record(json.loads(pod.spec.annotations[CONFIG_ANNOTATION]))
    return _container(d, pod, _latest(records), body)


def _container(d: DockerDeps, pod: PodSandbox, record: ContainerRecord | None,
               body: CreateBody) -> DockerContainer:
    paused = record is not None and record.state is ContainerState.RUNNING and \
        d.runtime.is_paused(record.id)
    return DockerContainer(pod, record, body, paused)


def all_containers(d: DockerDeps) -> list[DockerContainer]:
    """Every Docker-side container, newest first (as `docker ps` lists)."""
    by_pod: dict[str, list[ContainerRecord]] = {}
    for r in d.containers.list():
        by_pod.setdefault(r.pod_id, []).append(r)
    out = []
    for pod in docker_pods(d):
        body = CreateBody.from_record(json.loads(pod.spec.annotations[CONFIG_ANNOTATION]))
        out.append(_container(d, pod, _latest(by_pod.get(pod.id.value, [])), body))
    return sorted(out, key=lambda c: -c.pod.created_at)


def docker_records(d: DockerDeps) -> list[ContainerRecord]:
    return [c.record for c in all_containers(d) if c.record is not None]


def find(d: DockerDeps, ref: str) -> DockerContainer:
    """The container named by id, unique id prefix or name.

    Raises:
        NotFound: "No such container"; BadRequest: an ambiguous prefix.
    """
    name = ref.lstrip("/")
    if not name:
        raise NotFound("No such container: ")
    pods = docker_pods(d)
    exact = [p for p in pods if p.id.value == name or p.spec.metadata.name == name]
    if exact:
        return view(d, exact[0])
    hits = [p for p in pods if p.id.value.startswith(name)]
    if len(hits) > 1:
        raise BadRequest(f"multiple IDs found with provided prefix: {name[:64]}")
    if not hits:
        raise NotFound(f"No such container: {ref[:200]}")
    return view(d, hits[0])
