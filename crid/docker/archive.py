"""`docker cp`: GET/HEAD/PUT /containers/{id}/archive, on running and stopped containers.

GET answers a tar of the resource and HEAD only its stat, both in the
X-Docker-Container-Path-Stat header (base64 JSON: name, size, Go file mode, mtime, link
target), which the CLI reads to decide how to name what it copies. PUT extracts a tar (plain
or compressed) into a directory that exists in the container; the archive is spooled and
checked whole first, so a hostile one is a 400 with nothing written (crid/docker/archive_untar).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import errno
import json
import os

from crid.docker import lifecycle
from crid.docker.archive_fs import (
    DIR_PATH,
    ContainerRoot,
    PathStat,
    absolute,
    inner,
    locate,
    open_at,
    path_error,
    stat_path,
)
from crid.docker.archive_tar import tar_resource
from crid.docker.archive_untar import UntarOptions, extract
from crid.docker.containers_view import DockerContainer, find
from crid.docker.create_body import BindMount, VolumeMount
from crid.docker.deps import DockerDeps
from crid.docker.errors import BadRequest
from crid.docker.http import Request, Response
from crid.docker.router import Router
from crid.errors import PermissionDenied

STAT_HEADER = "x-docker-container-path-stat"


def _stat_header(st: PathStat) -> tuple[str, str]:
    mtime = datetime.datetime.fromtimestamp(st.mtime_ns // 1_000_000_000, datetime.UTC)
    text = mtime.strftime("%Y-%m-%dT%H:%M:%S") + f".{st.mtime_ns % 1_000_000_000:09d}Z"
    value = {"name": st.name, "size": st.size, "mode": st.mode, "mtime": text,
             "linkTarget": st.link_target}
    return STAT_HEADER, base64.b64encode(json.dumps(value).encode()).decode()


def get_archive(d: DockerDeps, req: Request) -> Response:
    """The stat header, and for GET the tar stream (the root stays open while it is read).

    Raises:
        NotFound: no such container or path; BadRequest: a bad path.
    """
    ref = req.params["id"]
    c = find(d, ref)
    path = absolute(req.arg("path"))
    stack = contextlib.ExitStack()
    try:
        loc = stack.enter_context(locate(d, c, path))
        root = loc.root
        rel, st = stat_path(root, loc.path, ref, name=path,
                            mount=loc.bind.target if loc.bind else "/")
        if path.endswith("/") or path.endswith("/."):
            _require_dir(root, rel, path, ref)
    except BaseException:
        stack.close()
        raise
    header = _stat_header(st)
    if req.method == "HEAD":
        stack.close()
        return Response(200, b"", content_type="", headers=[header])
    lifecycle.event(d, "archive-path", c)

    def body():  # noqa: ANN202 - a generator of tar bytes
        with stack:
            yield from tar_resource(root, rel, st.name)
    return Response(200, body(), content_type="application/x-tar", headers=[header])


def _require_dir(root: ContainerRoot, rel: str, path: str, ref: str) -> None:
    try:
        os.close(open_at(root, rel, DIR_PATH))
    except OSError as e:
        raise path_error(e, path, ref) from None


def put_archive(d: DockerDeps, req: Request) -> Response:
    """Extracts the body's tar into the directory `path` (its symlinks followed inside the
    container).

    Raises:
        NotFound: no such container or directory; BadRequest: not a directory, not a tar,
        an unsafe entry; PermissionDenied: a read-only root or bind mount.
    """
    ref = req.params["id"]
    c = find(d, ref)
    path = absolute(req.arg("path"))
    opts = UntarOptions(keep_owner=req.flag("copyUIDGID"),
                        no_overwrite_dir_non_dir=req.flag("noOverwriteDirNonDir"))
    with locate(d, c, path) as loc:
        root = loc.root
        rel = inner(root, loc.path, follow_last=True)
        try:
            dest = open_at(root, rel, DIR_PATH)
        except OSError as e:
            if e.errno == errno.ENOTDIR:  # the path, or a component of it, is a file
                raise BadRequest("extraction point is not a directory") from None
            raise path_error(e, path, ref) from None
        try:
            if loc.bind is not None:
                if loc.bind.readonly:
                    raise PermissionDenied(f"mounted volume {loc.bind.target} is marked "
                                           "read-only")
            else:
                _check_writable(c, "/" if rel == "." else "/" + rel)
            with req.body_stream().spool() as archive:
                extract(archive, dest, opts)
        finally:
            os.close(dest)
    lifecycle.event(d, "extract-to-dir", c)
    return Response(200, b"", content_type="")


def _check_writable(c: DockerContainer, where: str) -> None:
    """Docker's rule: a read-only bind refuses, and outside any bind a read-only root does."""
    mounts: list[BindMount | VolumeMount] = [*c.body.binds, *c.body.volumes]
    bind = max((b for b in mounts if _under(where, b.target)),
               key=lambda b: len(b.target), default=None)
    if bind is not None and bind.readonly:
        raise PermissionDenied(f"mounted volume {bind.target} is marked read-only")
    if bind is None and c.body.readonly_rootfs:
        raise PermissionDenied("container rootfs is marked read-only")


def _under(path: str, top: str) -> bool:
    top = top.rstrip("/") or "/"
    return top == "/" or path == top or path.startswith(top + "/")


def register(router: Router, d: DockerDeps) -> None:
    router.add("GET", "/containers/{id}/archive", lambda req: get_archive(d, req))
    router.add("PUT", "/containers/{id}/archive", lambda req: put_archive(d, req),
               streams_body=True)

