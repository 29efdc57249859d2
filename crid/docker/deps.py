"""What the Docker front door's handlers reach: the same domain the CRI front door uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crid.containers.manager import ContainerManager
from crid.containers.runtime_adapter import EmbeddedRuntime
from crid.docker.events import EventJournal
from crid.docker.image_configs import ImageConfigs
from crid.events import EventBus
from crid.network.named import NamedNetworks
from crid.pods import PodManager
from crid.volumes import VolumeStore
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
    volumes: VolumeStore  # <root>/volumes
    networks: NamedNetworks  # user-defined networks (<root>/networks)
    cgroup_driver: str = "cgroupfs"
    cgroup_parent: str = ""  # pod cgroup parent of Docker-side containers ("" = crid's default)
    short_names: tuple[str, ...] = ("docker.io",)  # the image store's short-name registries
    journal: EventJournal = field(default_factory=EventJournal)  # what `docker events` shows
    configs: ImageConfigs = field(default_factory=ImageConfigs)

    def image_config(self, image_id: str) -> dict[str, Any]:
        """The image's config (cached; do not change it). Raises ImageNotFound."""
        return self.configs.get(self.images, image_id)
