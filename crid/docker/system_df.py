"""`docker system df`: GET /system/df, disk used by images (layers shared between images
counted once), containers (their writable layers), volumes and the build cache.

An image's SharedSize is the part of it other images share; its Containers count is how
many Docker-side containers use it, which the CLI's ACTIVE and RECLAIMABLE columns read.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from crid.docker.container_volumes import users
from crid.docker.containers_view import all_containers
from crid.docker.deps import DockerDeps
from crid.docker.errors import BadRequest
from crid.docker.http import Request, Response, json_response
from crid.docker.images import summary as image_summary
from crid.docker.inspect import summary as container_summary
from crid.docker.router import Router
from crid.docker.sizes import sizes
from crid.docker.volumes import volume_json

TYPES = ("container", "image", "volume", "build-cache")


def system_df(d: DockerDeps, req: Request) -> Response:
    wanted = set(req.query.get("type", [])) or set(TYPES)
    if wanted - set(TYPES):
        raise BadRequest(f"unknown type {sorted(wanted - set(TYPES))[0][:40]!r}")
    containers = all_containers(d)
    out: dict[str, Any] = {"BuildCache": [] if "build-cache" in wanted else None}
    if "image" in wanted:
        out.update(_images(d, Counter(c.record.image_id for c in containers if c.record)))
    if "container" in wanted:
        out["Containers"] = [{**container_summary(d, c), **sizes(d, c)} for c in containers]
    if "volume" in wanted:
        used = users(d)
        out["Volumes"] = [{**volume_json(v), "UsageData": {
            "Size": d.volumes.size(v.name), "RefCount": len(used.get(v.name, []))}}
            for v in d.volumes.list()]
    return json_response(out)


def _images(d: DockerDeps, in_use: Counter[str]) -> dict[str, Any]:
    records = d.images.list()
    layers = {r.id: list(zip(r.chain_ids, d.images.layer_sizes(r.id), strict=True))
              for r in records}
    holders = Counter(cid for pairs in layers.values() for cid, _ in pairs)
    unique = {cid: size for pairs in layers.values() for cid, size in pairs}
    rows = []
    for r in records:
        shared = sum(size for cid, size in layers[r.id] if holders[cid] > 1)
        rows.append({**image_summary(d, r), "SharedSize": shared,
                     "Containers": in_use.get(r.id, 0)})
    return {"LayersSize": sum(unique.values()), "Images": rows}


def register(router: Router, d: DockerDeps) -> None:
    router.add("GET", "/system/df", lambda req: system_df(d, req))
