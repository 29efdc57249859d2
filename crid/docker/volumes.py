"""Volume endpoints: create, list, inspect, remove, prune (`docker volume ...`)."""

from __future__ import annotations

import contextlib
from typing import Any

from crid.docker import container_volumes
from crid.docker.deps import DockerDeps
from crid.docker.errors import BadRequest, Conflict
from crid.docker.filters import parse_filters
from crid.docker.http import Request, Response, empty, json_response
from crid.docker.inspect import rfc3339
from crid.docker.router import Router
from crid.docker.versions import at_least
from crid.errors import AlreadyExists, NotFound
from crid.volumes import Volume

_LIST_FILTERS = ("dangling", "driver", "label", "name")
_PRUNE_FILTERS = ("label", "all")


def volume_json(v: Volume) -> dict[str, Any]:
    """Docker's Volume object."""
    return {"Name": v.name, "Driver": v.driver, "Mountpoint": str(v.mountpoint),
            "CreatedAt": rfc3339(int(v.created_at * 1e9)), "Labels": v.labels or None,
            "Scope": "local", "Options": v.options or None}


def create(d: DockerDeps, req: Request) -> Response:
    body = req.json({})
    if not isinstance(body, dict):
        raise BadRequest("volume config must be a JSON object")
    name = _str(body, "Name") or ""
    driver = _str(body, "Driver") or "local"
    if driver != "local":
        raise NotFound(f"error looking up volume plugin {driver[:60]}: plugin not found")
    if _str_map(body, "DriverOpts"):
        raise BadRequest("local volume options (type, device, o) are not served: crid's "
                         "volumes are directories")
    labels = _str_map(body, "Labels")
    with d.volumes.lock:
        if not name:
            name = container_volumes.anonymous_name()
        try:
            vol = d.volumes.create(name, labels)
        except AlreadyExists:  # Docker hands back the existing volume
            vol = d.volumes.get(name)
    d.journal.add("volume", "create", vol.name, driver="local")
    return json_response(volume_json(vol), status=201)


def _str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{key}: wrong type {type(value).__name__}")
    return value


def _str_map(body: dict[str, Any], key: str) -> dict[str, str]:
    value = body.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise BadRequest(f"{key}: must be an object of strings")
    return value


def _labels_match(v: Volume, wanted: list[str]) -> bool:
    def one(text: str) -> bool:
        key, sep, value = text.partition("=")
        return key in v.labels and (not sep or v.labels[key] == value)
    return all(one(t) for t in wanted)


def _bool(values: list[str], name: str) -> bool:
    if any(x.lower() not in ("true", "false", "1", "0") for x in values):
        raise BadRequest(f"invalid filter '{name}={values[0][:20]}'")
    return values[-1].lower() in ("true", "1")


def list_volumes(d: DockerDeps, req: Request) -> Response:
    f = parse_filters(req, _LIST_FILTERS)
    used = container_volumes.users(d)
    shown = []
    for v in d.volumes.list():
        if "dangling" in f and _bool(f["dangling"], "dangling") == (v.name in used):
            continue
        if "name" in f and not any(n in v.name for n in f["name"]):
            continue
        if "driver" in f and v.driver not in f["driver"]:
            continue
        if not _labels_match(v, f.get("label", [])):
            continue
        shown.append(volume_json(v))
    return json_response({"Volumes": shown, "Warnings": None})


def remove(d: DockerDeps, req: Request) -> Response:
    """Raises Conflict while a container (any state) mounts it; NotFound unless `force`."""
    name = req.params["name"]
    with d.volumes.lock:
        try:
            d.volumes.get(name)
        except NotFound:
            if req.flag("force"):
                return empty()
            raise
        users = container_volumes.users(d).get(name)
        if users:
            raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        d.volumes.remove(name)
    d.journal.add("volume", "destroy", name, driver="local")
    return empty()


def prune(d: DockerDeps, req: Request) -> Response:
    """Removes unused volumes: since API 1.42 only anonymous ones unless `all=true`."""
    f = parse_filters(req, _PRUNE_FILTERS)
    every = _bool(f["all"], "all") if "all" in f else not at_least(req.version, "1.42")
    gone, space = [], 0
    with d.volumes.lock:
        used = container_volumes.users(d)
        for v in d.volumes.list():
            if v.name in used or not (every or v.anonymous) or \
                    not _labels_match(v, f.get("label", [])):
                continue
            size = d.volumes.size(v.name)
            with contextlib.suppress(NotFound):
                d.volumes.remove(v.name)
                gone.append(v.name)
                space += size
    for name in gone:
        d.journal.add("volume", "destroy", name, driver="local")
    return json_response({"VolumesDeleted": gone or None, "SpaceReclaimed": space})


def register(router: Router, d: DockerDeps) -> None:
    router.add("POST", "/volumes/create", lambda req: create(d, req))
    router.add("GET", "/volumes", lambda req: list_volumes(d, req))
    router.add("POST", "/volumes/prune", lambda req: prune(d, req))
    router.add("GET", "/volumes/{name}",
               lambda req: json_response(volume_json(d.volumes.get(req.params["name"]))))
    router.add("DELETE", "/volumes/{name}", lambda req: remove(d, req))


