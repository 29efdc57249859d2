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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

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


def piped(write: Callable[[BinaryIO], None], what: str) -> Iterator[bytes]:
    """What `write(out)` writes, in chunks, while a thread writes it into a pipe."""
    r, w = os.pipe()
    failed: list[BaseException] = []

    def writer() -> None:
        out = os.fdopen(w, "wb", buffering=_CHUNK)  # owns w from here: closes it once
        try:
            with out:
                write(out)
        except BrokenPipeError:
            pass  # the client went away
        except BaseException as e:  # noqa: BLE001 - reported where the stream ends
            failed.append(e)
            log.warning(f"{what} failed", error=str(e), type=type(e).__name__)

    thread = threading.Thread(target=writer, name="docker-tar", daemon=True)
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
    def write(out: BinaryIO) -> None:
        with _rootfs(d, rootfs, Path(r.bundle) / "upper", r.image_id) as root:
            pack_layer(root, out)

    stream = piped(write, "exporting a container")
    d.journal.add("container", "export", c.id, name=c.name, image=c.body.image)
    return Response(200, stream, content_type="application/x-tar")


def register(router: Router, d: DockerDeps) -> None:
    router.add("GET", "/containers/{id}/export", lambda req: export(d, req))
