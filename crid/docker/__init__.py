"""The Docker Engine API front door (docs/docker-api.md)."""

from crid.docker.app import DockerFrontDoor
from crid.docker.deps import DockerDeps

__all__ = ["DockerDeps", "DockerFrontDoor"]
