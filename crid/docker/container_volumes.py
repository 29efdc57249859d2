"""The volumes of Docker-side containers: made (named ones on first mention, anonymous ones
for `-v /path` and the image's VOLUMEs) when a container is created, filled from the image
(copy-up) before it first starts, and the anonymous ones removed with it (`rm -v`, `--rm`)."""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crid.docker.containers_view import all_containers
from crid.docker.create_body import CreateBody, VolumeMount
from crid.docker.deps import DockerDeps
from crid.errors import NotFound
from crid.volumes import ANONYMOUS_LABEL, copy_up


def anonymous_name() -> str:
    """A fresh volume name as Docker makes them (64 hex digits)."""
    return secrets.token_hex(32)


def with_image_volumes(body: CreateBody, image_config: dict[str, Any]) -> CreateBody:
    """The body with an anonymous volume for each VOLUME of the image that no bind or volume
    of the body covers (as Docker's create does)."""
    paths = sorted((image_config.get("config") or {}).get("Volumes") or {})
    taken = {v.target.rstrip("/") for v in body.volumes} | \
        {b.target.rstrip("/") for b in body.binds}
    extra = [VolumeMount("", p, anonymous=True) for p in paths
             if p.startswith("/") and p.rstrip("/") and p.rstrip("/") not in taken]
    return dataclasses.replace(body, volumes=[*body.volumes, *extra]) if extra else body


@contextlib.contextmanager
def attached(d: DockerDeps, body: CreateBody) -> Iterator[CreateBody]:
    """The body with every volume named: named volumes made when missing, anonymous ones
    made with fresh names. Hold `d.volumes.lock` around this and the pod's creation (so no
    prune or rm sees the volumes unused in between). The anonymous volumes go again if the
    block raises."""
    made: list[str] = []
    try:
        volumes = []
        for v in body.volumes:
            if v.anonymous and not v.name:
                name = anonymous_name()
                d.volumes.create(name, {ANONYMOUS_LABEL: ""})
                made.append(name)
                v = dataclasses.replace(v, name=name)
            else:
                d.volumes.ensure(v.name)
            volumes.append(v)
        yield dataclasses.replace(body, volumes=volumes)
    except BaseException:
        for name in made:
            with contextlib.suppress(NotFound):
                d.volumes.remove(name)
        raise


def fill(d: DockerDeps, body: CreateBody, rootfs: Path) -> None:
    """Copy-up: each empty volume takes the content the image has at its path (unless
    `nocopy`). `rootfs` is the created, not yet started, container's root."""
    for v in body.volumes:
        if not v.nocopy:
            copy_up(rootfs, v.target, d.volumes.get(v.name).mountpoint)


def users(d: DockerDeps) -> dict[str, list[str]]:
    """Volume name -> ids of the containers (any state) that mount it."""
    out: dict[str, list[str]] = {}
    for c in all_containers(d):
        for v in c.body.volumes:
            out.setdefault(v.name, []).append(c.id)
    return out


def remove_anonymous(d: DockerDeps, body: CreateBody) -> None:
    """Removes the body's anonymous volumes that no remaining container mounts (call after
    the container is gone)."""
    with d.volumes.lock:
        used = users(d)
        for v in body.volumes:
            if v.anonymous and v.name and v.name not in used:
                with contextlib.suppress(NotFound):
                    d.volumes.remove(v.name)
