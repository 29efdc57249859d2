"""GET /containers/{id}/export: the container's merged file system as a tar, streamed.

The rootfs overlay stays mounted (on the host's side) until the container is removed, so it
is read where it is, running or not; if it is not mounted (the host was rebooted), its upper
directory over its image's layers is mounted read-only for the read. The tar is written by
the layer packer (no symlink followed, sockets left out) into a pipe a thread fills while the
response sends what it reads; a client that goes away stops the writer.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from crid import logs
from crid.build.view import merged_view
from crid.docker.commit import work_dir
from crid.docker.containers_view import find
from crid.docker.deps import DockerDeps
from crid.docker.errors import Conflict
from crid.docker.http import Request, Response
from crid.docker.router import Router
from imagestore import pack_layer

log = logs.get("crid.docker")
_CHUNK = 1 << 16


def tar_stream(root_cm: contextlib.AbstractContextManager[Path]) -> Iterator[bytes]:
    """The tar of the tree `root_cm` yields, in chunks, while a thread packs it."""
    r, w = os.pipe()
    failed: list[BaseException] = []

    def writer() -> None:
        try:
            with root_cm as root, os.fdopen(w, "wb", buffering=_CHUNK) as out:
                pack_layer(root, out)
        except BrokenPipeError:
            pass  # the client went away
        except BaseException as e:  # noqa: BLE001 - reported where the stream ends
            failed.append(e)
            log.warning("exporting a container failed", error=str(e))
        finally:
            with contextlib.suppress(OSError):
                os.close(w)

    thread = threading.Thread(target=writer, name="docker-export", daemon=True)
    thread.start()
    try:
        while chunk := os.read(r, _CHUNK):
            yield chunk
    finally:
        os.close(r)  # a writer still writing gets EPIPE
        thread.join()
    if failed:
        raise failed[0]  # the connection breaks: the client sees a truncated archive


@contextlib.contextmanager
def _rootfs(d: DockerDeps, rootfs: Path, upper: Path, image_id: str) -> Iterator[Path]:
    if os.path.ismount(rootfs):
        yield rootfs
        return
    with merged_view([upper, *d.images.layer_dirs(image_id)], work_dir(d)) as root:
        yield root


def export(d: DockerDeps, req: Request) -> Response:
    c = find(d, req.params["id"])
    r = c.record
    if r is None or not r.bundle or not (Path(r.bundle) / "upper").is_dir():
        raise Conflict(f"container {c.id[:12]} has no file system to export")
    rootfs = Path(r.rootfs or Path(r.bundle) / "rootfs")
    stream = tar_stream(_rootfs(d, rootfs, Path(r.bundle) / "upper", r.image_id))
    d.journal.add("container", "export", c.id, name=c.name, image=c.body.image)
    return Response(200, stream, content_type="application/x-tar")


def register(router: Router, d: DockerDeps) -> None:
    router.add("GET", "/containers/{id}/export", lambda req: export(d, req))
