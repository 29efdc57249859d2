"""POST /commit: a container's writable layer as a new image on top of its image.

The layer is the container's upper directory packed as a layer tar (whiteouts for what it
deleted), less the runtime's mount points (crid/docker/changes.py). The new image's config
is the container's (its image's defaults with what the container was created with), then
the `changes` (Dockerfile instructions, applied by the build engine's instruction code),
then the fields of the request body's config that are set, as Docker merges them. With
`pause` (the default) the container is frozen while its layer is packed, so the layer is one
moment of it.
"""

from __future__ import annotations

import contextlib
import datetime
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crid.build.instructions import apply_changes, env_map, set_env
from crid.docker.changes import writable_layer
from crid.docker.containers_view import DockerContainer, find
from crid.docker.deps import DockerDeps
from crid.docker.errors import BadRequest, Conflict
from crid.docker.http import Request, Response, json_response
from crid.docker.router import Router
from imagestore import ImageStoreError, NewImage, host_platform, pack_layer, parse_reference

# Fields of a ContainerConfig a commit body may set, with the JSON type each must have.
_BODY_FIELDS: dict[str, type | tuple[type, ...]] = {
    "Cmd": list, "Entrypoint": list, "Env": list, "WorkingDir": str, "User": str,
    "ExposedPorts": dict, "Labels": dict, "Volumes": dict, "StopSignal": str,
    "OnBuild": list, "Healthcheck": dict, "Shell": list}


def work_dir(d: DockerDeps) -> Path:
    """Where commits, imports and loads stage their files (emptied at each start)."""
    path = d.state_dir / "work"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def image_ref(repo: str, tag: str) -> str:
    """`repo[:tag]` checked as a tag reference ("" without a repo).

    Raises:
        BadRequest: a malformed repository or tag.
    """
    if not repo:
        if tag:
            raise BadRequest("a tag needs a repository (repo=)")
        return ""
    name = f"{repo}:{tag}" if tag else repo
    try:
        ref = parse_reference(name)
    except ImageStoreError as e:
        raise BadRequest(f"invalid reference format: {e}") from None
    if ref.digest:
        raise BadRequest("invalid reference format: a digest is not a tag")
    return name


def container_config(d: DockerDeps, c: DockerContainer) -> dict[str, Any]:
    """The runtime config the container runs with: its image's, overridden as created."""
    assert c.record is not None
    image = dict(d.image_config(c.record.image_id).get("config") or {})
    b = c.body
    if b.env:
        set_env(image, [(k, v) for k, v in env_map({"Env": b.env}).items()])
    if b.entrypoint is not None:
        image["Entrypoint"] = b.entrypoint or None
        if b.cmd is None:
            image["Cmd"] = None
    if b.cmd is not None:
        image["Cmd"] = b.cmd
    if b.working_dir:
        image["WorkingDir"] = b.working_dir
    if b.user:
        image["User"] = b.user
    if b.stop_signal:
        image["StopSignal"] = b.stop_signal
    if b.exposed_ports:
        image["ExposedPorts"] = {**(image.get("ExposedPorts") or {}),
                                 **{p: {} for p in b.exposed_ports}}
    if b.labels:
        image["Labels"] = {**(image.get("Labels") or {}), **b.labels}
    return image


def merge_body(config: dict[str, Any], body: Any) -> None:
    """The set fields of a ContainerConfig body over `config`.

    Raises:
        BadRequest: not an object, or a field of the wrong type.
    """
    if body is None:
        return
    if not isinstance(body, dict):
        raise BadRequest("the commit body must be a JSON object (a container config)")
    for key, kind in _BODY_FIELDS.items():
        value = body.get(key)
        if value is None or value in ("", [], {}):
            continue
        if not isinstance(value, kind):
            raise BadRequest(f"config field {key} has the wrong type")
        if key == "Env":
            set_env(config, list(env_map({"Env": value}).items()))
        else:
            config[key] = value


@contextlib.contextmanager
def _frozen(d: DockerDeps, c: DockerContainer, pause: bool) -> Iterator[None]:
    """The container frozen for the block (unless it is not running or already paused)."""
    freeze = pause and c.running and not c.paused and c.record is not None
    if freeze:
        d.runtime.pause(c.record.id)  # type: ignore[union-attr]
    try:
        yield
    finally:
        if freeze:
            d.runtime.resume(c.record.id)  # type: ignore[union-attr]


def commit(d: DockerDeps, req: Request) -> Response:
    ref = req.arg("container")
    if not ref:
        raise BadRequest("query parameter container is required")
    c = find(d, ref)
    if c.record is None:
        raise Conflict(f"container {c.id[:12]} has no writable layer")
    name = image_ref(req.arg("repo"), req.arg("tag"))
    config = container_config(d, c)
    apply_changes(config, req.query.get("changes", []))
    merge_body(config, req.json())
    layer = writable_layer(d, c.record)
    now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
    created_by = " ".join([*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])])
    history: dict[str, Any] = {"created": now, "created_by": created_by}
    for key in ("author", "comment"):
        if req.arg(key):
            history[key] = req.arg(key)
    base = d.image_config(c.record.image_id)
    platform = host_platform()
    image_config: dict[str, Any] = {
        "architecture": base.get("architecture") or platform.architecture,
        "os": base.get("os") or platform.os, "created": now, "config": config,
        "container": c.id, "history": [*(base.get("history") or []), history]}
    for key in ("author", "comment"):
        if req.arg(key):
            image_config[key] = req.arg(key)
    with tempfile.NamedTemporaryFile(prefix="commit-", suffix=".tar", dir=work_dir(d)) as tar:
        with _frozen(d, c, req.flag("pause", True)):
            pack_layer(layer.upper, tar, exclude=layer.stubs)  # type: ignore[arg-type]
        tar.flush()
        record = d.images.create(NewImage(c.record.image_id, (Path(tar.name),), image_config))
    if name:  # tagged as `docker tag` does (short names on the first short-name registry)
        d.images.tag(record.id, name)
    d.journal.add("container", "commit", c.id, name=c.name, image=c.body.image,
                  comment=req.arg("comment"))
    return json_response({"Id": record.id}, status=201)


def register(router: Router, d: DockerDeps) -> None:
    router.add("POST", "/commit", lambda req: commit(d, req))
