"""POST /images/create?fromSrc=-: `docker import`, a root file system tar (plain, gzip,
bzip2, xz or zstd) in the request body as a one-layer image.

The tar is the layer as it is, unpacked by the image store with the checks a pulled layer
gets (no `..`, no absolute names, no links out); the config has the `changes` applied by the
build engine's instruction code, the message as the history comment. A URL as `fromSrc` is
refused: the daemon fetches nothing on a client's behalf.
"""

from __future__ import annotations

import bz2
import datetime
import gzip
import io
import json
import lzma
import tempfile
import zlib
from pathlib import Path
from typing import IO, Any, Protocol

import zstandard

from crid.build.instructions import apply_changes
from crid.docker.commit import image_ref, work_dir
from crid.docker.deps import DockerDeps
from crid.docker.errors import BadRequest
from crid.docker.http import Request, Response
from imagestore import InvalidImage, NewImage, host_platform

_CHUNK = 1 << 20
MAX_TAR = 64 << 30  # bytes of a decompressed import (a bomb stops here)


class _Reads(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def _reader(head: bytes, body: IO[bytes]) -> _Reads:
    """What reads `body` (starting with `head`) as a plain tar, a bounded read at a time."""
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=body, mode="rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(body)
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(body)
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return zstandard.ZstdDecompressor().stream_reader(body)
    return body


def write_tar(body: io.RawIOBase, out: IO[bytes], limit: int = MAX_TAR) -> None:
    """The body, decompressed if it is compressed, into `out`.

    Raises:
        BadRequest: a corrupt compressed stream, or past `limit` bytes decompressed.
    """
    buffered = io.BufferedReader(body, _CHUNK)
    reader = _reader(buffered.peek(6)[:6], buffered)  # type: ignore[arg-type]
    written = 0
    while True:
        try:
            data = reader.read(_CHUNK)
        except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError,
                zstandard.ZstdError) as e:
            raise BadRequest(f"the archive does not decompress: {e}") from None
        if not data:
            return
        written += len(data)
        if written > limit:
            raise BadRequest(f"the archive is larger than {limit} bytes decompressed")
        out.write(data)


def import_config(changes: list[str], message: str) -> dict[str, Any]:
    """The config of an imported image: `changes` applied to an empty runtime config."""
    runtime: dict[str, Any] = {}
    apply_changes(runtime, changes)
    now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
    platform = host_platform()
    history: dict[str, Any] = {"created": now, "created_by": "",
                               "comment": message or "Imported from -"}
    config: dict[str, Any] = {"architecture": platform.architecture, "os": platform.os,
                              "created": now, "config": runtime, "history": [history]}
    if message:
        config["comment"] = message
    if platform.variant:
        config["variant"] = platform.variant
    return config


def import_image(d: DockerDeps, req: Request) -> Response:
    """Raises: BadRequest (a URL source, a bad reference, change or archive)."""
    if req.arg("fromSrc") != "-":
        raise BadRequest("importing from a URL is not served: send the archive as the body "
                         "(fromSrc=-)")
    name = image_ref(req.arg("repo"), req.arg("tag"))
    config = import_config(req.query.get("changes", []), req.arg("message"))
    body = req.body_stream()
    with tempfile.NamedTemporaryFile(prefix="import-", suffix=".tar", dir=work_dir(d)) as tar:
        write_tar(body, tar)
        tar.flush()
        if tar.tell() == 0:
            raise BadRequest("the archive is empty")
        try:
            record = d.images.create(NewImage(None, (Path(tar.name),), config))
        except InvalidImage as e:
            raise BadRequest(f"the archive is not a file system tar: {e}") from None
    if name:
        d.images.tag(record.id, name)
    d.journal.add("image", "import", record.id, name=name or record.id)
    return Response(200, json.dumps({"status": record.id}).encode() + b"\r\n")

