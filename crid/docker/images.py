"""Image endpoints: list, pull and push (with Docker's JSON progress), inspect, history, tag,
remove, search, prune."""

from __future__ import annotations

import base64
import binascii
import calendar
import fnmatch
import json
import time
from typing import Any

from crid.docker.deps import DockerDeps
from crid.docker.errors import BadRequest, Conflict
from crid.docker.filters import parse_filters
from crid.docker.http import Request, Response, json_response
from crid.docker.logs import parse_time
from crid.docker.pull import pull_stream
from crid.docker.push import push_stream, push_targets
from crid.docker.router import Router
from crid.errors import NotFound
from imagestore import Credentials, ImageRecord


def _created(config: dict[str, Any]) -> str:
    return str(config.get("created") or "1970-01-01T00:00:00Z")


def _unix(rfc3339: str) -> int:
    try:
        return calendar.timegm(time.strptime(rfc3339[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return 0


def find(d: DockerDeps, name: str) -> ImageRecord:
    """The image by name, id or id prefix.

    Raises:
        NotFound: "No such image" (the wording the docker CLI answers by pulling).
    """
    record = d.images.status(name) if name else None
    if record is None:
        raise NotFound(f"No such image: {name[:200]}")
    return record


def summary(d: DockerDeps, r: ImageRecord) -> dict[str, Any]:
    config = d.image_config(r.id)
    return {"Id": r.id, "ParentId": "", "RepoTags": list(r.repo_tags),
            "RepoDigests": list(r.repo_digests), "Created": _unix(_created(config)),
            "Size": r.size, "SharedSize": -1, "VirtualSize": r.size,
            "Labels": (config.get("config") or {}).get("Labels") or {}, "Containers": -1}


def _matches(d: DockerDeps, r: ImageRecord, filters: dict[str, list[str]]) -> bool:
    for pattern in filters.get("reference", []):
        names = [*r.repo_tags, *(t.rsplit(":", 1)[0] for t in r.repo_tags)]
        short = [n.split("/", 1)[1] for n in names if "/" in n]
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names + short):
            return False
    for value in filters.get("dangling", []):
        if (value in ("true", "1")) != (not r.repo_tags):
            return False
    labels = (d.image_config(r.id).get("config") or {}).get("Labels") or {}
    for want in filters.get("label", []):
        key, eq, value = want.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def _created_window(d: DockerDeps, filters: dict[str, list[str]]) -> tuple[int, int]:
    """`since`/`before` name images; the listed ones were created strictly between them."""
    low = max((_unix(_created(d.image_config(find(d, v).id))) for v in filters.get("since", [])),
              default=-1)
    high = min((_unix(_created(d.image_config(find(d, v).id)))
                for v in filters.get("before", [])), default=2 ** 63)
    return low, high


def list_images(d: DockerDeps, req: Request) -> Response:
    filters = parse_filters(req, ("reference", "dangling", "label", "before", "since"))
    low, high = _created_window(d, filters)
    out = [s for r in d.images.list()
           if (req.flag("all") or r.repo_tags or filters.get("dangling")) and
           _matches(d, r, filters) and low < (s := summary(d, r))["Created"] < high]
    return json_response(sorted(out, key=lambda i: -i["Created"]))


def inspect(d: DockerDeps, req: Request) -> Response:
    r = find(d, req.params["name"])
    config = d.image_config(r.id)
    c = config.get("config") or {}
    return json_response({
        "Id": r.id, "RepoTags": list(r.repo_tags), "RepoDigests": list(r.repo_digests),
        "Parent": "", "Comment": config.get("comment", ""), "Created": _created(config),
        "Container": "",
        "ContainerConfig": {}, "DockerVersion": "", "Author": config.get("author", ""),
        "Config": {"Hostname": "", "Domainname": "", "User": c.get("User", ""),
                   "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
                   "ExposedPorts": c.get("ExposedPorts"), "Tty": False, "OpenStdin": False,
                   "StdinOnce": False, "Env": c.get("Env"), "Cmd": c.get("Cmd"),
                   "Image": "", "Volumes": c.get("Volumes"),
                   "WorkingDir": c.get("WorkingDir", ""), "Entrypoint": c.get("Entrypoint"),
                   "OnBuild": None, "Labels": c.get("Labels"),
                   "StopSignal": c.get("StopSignal")},
        "Architecture": config.get("architecture", ""), "Os": config.get("os", ""),
        "Variant": config.get("variant", ""), "Size": r.size, "VirtualSize": r.size,
        "GraphDriver": {"Name": "overlay", "Data": {
            "LowerDir": ":".join(str(p) for p in d.images.layer_dirs(r.id))}},
        "RootFS": {"Type": "layers",
                   "Layers": list((config.get("rootfs") or {}).get("diff_ids") or [])},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"}})


def history(d: DockerDeps, req: Request) -> Response:
    r = find(d, req.params["name"])
    config = d.image_config(r.id)
    sizes = iter(d.images.layer_sizes(r.id))
    out = []
    for entry in config.get("history") or []:
        empty = bool(entry.get("empty_layer"))
        out.append({"Id": "<missing>", "Created": _unix(str(entry.get("created") or "")),
                    "CreatedBy": entry.get("created_by", ""), "Tags": None,
                    "Size": 0 if empty else next(sizes, 0), "Comment": entry.get("comment", "")})
    if not out:  # an image built without history: one row per layer
        out = [{"Id": "<missing>", "Created": _unix(_created(config)), "CreatedBy": "",
                "Tags": None, "Size": s, "Comment": ""} for s in sizes]
    out.reverse()  # newest first, the top row carrying the image's id and tags
    if out:
        out[0].update(Id=r.id, Tags=list(r.repo_tags) or None)
    return json_response(out)


def tag(d: DockerDeps, req: Request) -> Response:
    repo, tag_ = req.arg("repo"), req.arg("tag") or "latest"
    if not repo:
        raise BadRequest("repository name is required (repo=)")
    record = find(d, req.params["name"])
    d.images.tag(record.id, f"{repo}:{tag_}")
    d.journal.add("image", "tag", record.id, name=f"{repo}:{tag_}")
    return Response(201, b"", content_type="")


def remove(d: DockerDeps, req: Request) -> Response:
    """Untags a name while the image keeps another; deletes the image with its last name
    (or by id: with -f when it has several names). 409 while a container uses it."""
    name, force = req.params["name"], req.flag("force")
    r = find(d, name)
    by_id = r.id.startswith(f"sha256:{name.removeprefix('sha256:')}")
    used = r.id in d.containers.image_ids_in_use()
    if by_id and len(r.repo_tags) > 1 and not force:
        raise Conflict(f"conflict: unable to delete {r.id[7:19]} (must be forced) - image is "
                       "referenced in multiple repositories")
    if not by_id and (len(r.repo_tags) > 1 or (used and force)):
        return json_response(_untag(d, r, [name]))
    if used and force:  # the image stays for its containers, its names go
        return json_response(_untag(d, r, [*r.repo_tags, *r.repo_digests]))
    if used:
        what = "delete" if by_id else "remove repository reference"
        raise Conflict(f"conflict: unable to {what} {name!r} (must force) - an image used by "
                       f"a container cannot be removed: {r.id[7:19]}")
    return json_response(_delete(d, r))


def _untag(d: DockerDeps, r: ImageRecord, names: list[str]) -> list[dict[str, str]]:
    for n in names:
        d.images.untag(n)
        d.journal.add("image", "untag", r.id, name=n)
    return [{"Untagged": n} for n in names]


def _delete(d: DockerDeps, r: ImageRecord) -> list[dict[str, str]]:
    """Removes the image with every name; Docker's report of it."""
    names = [*r.repo_tags, *r.repo_digests]
    d.images.remove(r.id)
    for n in names:
        d.journal.add("image", "untag", r.id, name=n)
    d.journal.add("image", "delete", r.id, name=r.id)
    return [*({"Untagged": n} for n in names), {"Deleted": r.id}]


def _credentials(req: Request) -> Credentials | None:
    header = req.header("x-registry-auth")
    if not header:
        return None
    try:
        padded = header + "=" * (-len(header) % 4)
        auth = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, binascii.Error):
        raise BadRequest("X-Registry-Auth is not base64-encoded JSON") from None
    if not isinstance(auth, dict) or not auth.get("username"):
        return None
    return Credentials(str(auth["username"]), str(auth.get("password", "")))


def create(d: DockerDeps, req: Request) -> Response:
    if req.arg("fromSrc"):
        # `docker import` is rare on a node: its archive formats and the Dockerfile-change
        # parser are loaded by the first one (crid/docker/app.py).
        from crid.docker.imports import import_image

        return import_image(d, req)
    image = req.arg("fromImage")
    if not image:
        raise BadRequest("fromImage or fromSrc is required")
    tag_ = req.arg("tag")
    if tag_:
        image += ("@" if tag_.startswith("sha256:") else ":") + tag_
    return Response(200, pull_stream(d, image, _credentials(req)))


def push(d: DockerDeps, req: Request) -> Response:
    name = req.params["name"]
    targets = push_targets(d, name, req.arg("tag"))  # errors before the stream starts
    return Response(200, push_stream(d, name, targets, _credentials(req)))


def search(d: DockerDeps, req: Request) -> Response:
    term = req.arg("term")
    if not term:
        raise BadRequest("search needs a term")
    filters = parse_filters(req, ("is-official", "is-automated", "stars"))
    limit = req.int_arg("limit", 25) or 25
    if not 1 <= limit <= 100:
        raise BadRequest("Limit must be between 1 and 100")
    # A private registry's catalog has no stars, descriptions, official or automated builds.
    wants_official = any(v in ("true", "1") for k in ("is-official", "is-automated")
                         for v in filters.get(k, []))
    if wants_official or any(v not in ("", "0") for v in filters.get("stars", [])):
        return json_response([])
    return json_response([{"name": n, "description": "", "star_count": 0,
                           "is_official": False, "is_automated": False}
                          for n in d.images.search(term, limit)])


def prune(d: DockerDeps, req: Request) -> Response:
    """Removes the images no container uses: the untagged ones, or every one with
    dangling=false."""
    filters = parse_filters(req, ("dangling", "label", "until"))
    dangling_only = all(v in ("true", "1") for v in filters.get("dangling", ["true"]))
    until = min((parse_time(v) for v in filters.get("until", [])), default=2.0 ** 63)
    used = d.containers.image_ids_in_use()
    deleted: list[dict[str, str]] = []
    reclaimed = 0
    for r in d.images.list():
        config = d.image_config(r.id)
        if r.id in used or (dangling_only and r.repo_tags) or r.pinned or \
                _unix(_created(config)) >= until or \
                not _matches(d, r, {"label": filters.get("label", [])}):
            continue
        deleted += _delete(d, r)
        reclaimed += r.size
    return json_response({"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed})


def register(router: Router, d: DockerDeps) -> None:
    router.add("GET", "/images/json", lambda req: list_images(d, req))
    router.add("GET", "/images/search", lambda req: search(d, req))
    router.add("POST", "/images/prune", lambda req: prune(d, req))
    # streams_body: an import's archive is the body (a pull has none)
    router.add("POST", "/images/create", lambda req: create(d, req), streams_body=True)
    router.add("GET", "/images/{name}/json", lambda req: inspect(d, req))
    router.add("GET", "/images/{name}/history", lambda req: history(d, req))
    router.add("POST", "/images/{name}/tag", lambda req: tag(d, req))
    router.add("POST", "/images/{name}/push", lambda req: push(d, req))
    router.add("DELETE", "/images/{name}", lambda req: remove(d, req))
