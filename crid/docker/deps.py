"""What the Docker front door's handlers reach: the same domain the CRI front door uses."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crid.containers.manager import ContainerManager
from crid.containers.runtime_adapter import EmbeddedRuntime
from crid.events import EventBus
from crid.pods import PodManager
from imagestore import ImageStore


@dataclass(frozen=True)
class DockerDeps:
    pods: PodManager
    containers: ContainerManager
    images: ImageStore
    events: EventBus
    runtime: EmbeddedRuntime  # signals (kill) and monitor sockets (attach)
    console_dir: Path  # console sockets of tty execs (the streaming backend's too)
    state_dir: Path  # <root>/docker: container logs of Docker-side containers
    root: Path  # crid's root (DockerRootDir)
    cgroup_driver: str = "cgroupfs"
    cgroup_parent: str = ""  # pod cgroup parent of Docker-side containers ("" = crid's default)
    short_names: tuple[str, ...] = ("docker.io",)  # the image store's short-name registries
