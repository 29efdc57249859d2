"""A pull as the JSON progress stream the docker CLI draws as bars.

The pull runs in a worker thread; its layer progress (imagestore.progress) arrives on a
queue and leaves as Docker's messages: per layer "Pulling fs layer", "Waiting",
"Downloading" current/total, "Verifying Checksum", "Download complete", "Extracting",
"Pull complete" (or "Already exists"), then "Digest:" and "Status:". Layers stream
network -> digest -> untar in one pass, so "Extracting" follows the verified download at once.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

from crid.docker.deps import DockerDeps
from imagestore import Credentials, ImageRecord
from imagestore.progress import DONE, DOWNLOADING, EXISTS, VERIFIED, WAITING, LayerProgress

_END = object()
DRAW_STEP = 512 * 1024  # a "Downloading" line per this many bytes, not per chunk


def _line(**fields: Any) -> bytes:
    return json.dumps(fields).encode() + b"\r\n"


def _bar(current: int, total: int) -> str:
    width = 50
    filled = width * current // total if total else 0
    arrow = ">" if filled < width else ""
    return f"[{'=' * filled}{arrow}{' ' * (width - filled - len(arrow))}] " \
           f"{_size(current)}/{_size(total)}"


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{n}B"
        n /= 1000  # type: ignore[assignment]
    return f"{n}B"


class _Drawer:
    """Turns layer progress into Docker's lines; one per phase, downloads throttled."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def lines(self, p: LayerProgress) -> list[bytes]:
        lid = p.digest.split(":", 1)[-1][:12]
        if p.phase == WAITING:
            return [_line(status="Pulling fs layer", progressDetail={}, id=lid),
                    _line(status="Waiting", progressDetail={}, id=lid)]
        if p.phase == EXISTS:
            self._last[lid] = -1
            return [_line(status="Already exists", progressDetail={}, id=lid)]
        if p.phase == DOWNLOADING:
            if p.current - self._last.get(lid, -DRAW_STEP) < DRAW_STEP and p.current < p.total:
                return []
            self._last[lid] = p.current
            return [_line(status="Downloading", id=lid, progress=_bar(p.current, p.total),
                          progressDetail={"current": p.current, "total": p.total})]
        if p.phase == VERIFIED:
            return [_line(status="Verifying Checksum", progressDetail={}, id=lid),
                    _line(status="Download complete", progressDetail={}, id=lid),
                    _line(status="Extracting", id=lid, progress=_bar(p.total, p.total),
                          progressDetail={"current": p.total, "total": p.total})]
        if p.phase == DONE and self._last.get(lid) != -1:
            return [_line(status="Pull complete", progressDetail={}, id=lid)]
        return []


def pull_stream(d: DockerDeps, image: str, credentials: Credentials | None) -> Iterator[bytes]:
    """The response body of POST /images/create: progress lines, then the outcome (an error
    is the stream's last line, `{"error": ..., "errorDetail": {"message": ...}}`)."""
    events: queue.Queue[Any] = queue.Queue()
    result: list[ImageRecord | BaseException] = []
    before = d.images.status(image)

    def work() -> None:
        try:
            result.append(d.images.pull(image, credentials, progress=events.put))
        except Exception as e:  # reported in the stream, which has already started
            result.append(e)
        finally:
            events.put(_END)

    name, _, tag = image.rpartition(":") if "@" not in image else (image, "", "")
    if "/" in tag:
        name, tag = image, "latest"
    yield _line(status=f"Pulling from {name or image}", id=tag or "latest")
    threading.Thread(target=work, name="docker-pull", daemon=True).start()
    drawer = _Drawer()
    while (item := events.get()) is not _END:
        yield from drawer.lines(item)
    outcome = result[0]
    if isinstance(outcome, BaseException):
        message = str(outcome) or type(outcome).__name__
        yield _line(errorDetail={"message": message}, error=message)
        return
    digest = outcome.repo_digests[-1].rsplit("@", 1)[-1] if outcome.repo_digests else outcome.id
    yield _line(status=f"Digest: {digest}")
    fresh = before is None or before.id != outcome.id
    yield _line(status=f"Status: {'Downloaded newer image' if fresh else 'Image is up to date'}"
                f" for {image}")
