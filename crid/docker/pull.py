"""A pull as the JSON progress stream the docker CLI draws as bars.

The pull runs in a worker thread; its layer progress (imagestore.progress) arrives on a
queue and leaves as Docker's messages: per layer "Pulling fs layer", "Waiting",
"Downloading" current/total, "Verifying Checksum", "Download complete", "Extracting",
"Pull complete" (or "Already exists"), then "Digest:" and "Status:". Layers stream
network -> digest -> untar in one pass, so "Extracting" follows the verified download at once.
"""

from __future__ import annotations

from collections.abc import Iterator

from crid.docker.deps import DockerDeps
from crid.docker.progress import Outcome, bar, error_line, in_worker, line
from imagestore import (
    DONE,
    DOWNLOADING,
    EXISTS,
    VERIFIED,
    WAITING,
    Credentials,
    ImageRecord,
    LayerProgress,
)

DRAW_STEP = 512 * 1024  # a "Downloading" line per this many bytes, not per chunk


class Drawer:
    """Turns layer progress into Docker's lines; one per phase, downloads throttled."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def lines(self, p: LayerProgress) -> list[bytes]:
        lid = p.digest.split(":", 1)[-1][:12]
        if p.phase == WAITING:
            return [line(status="Pulling fs layer", progressDetail={}, id=lid),
                    line(status="Waiting", progressDetail={}, id=lid)]
        if p.phase == EXISTS:
            self._last[lid] = -1
            return [line(status="Already exists", progressDetail={}, id=lid)]
        if p.phase == DOWNLOADING:
            if p.current - self._last.get(lid, -DRAW_STEP) < DRAW_STEP and p.current < p.total:
                return []
            self._last[lid] = p.current
            return [line(status="Downloading", id=lid, progress=bar(p.current, p.total),
                          progressDetail={"current": p.current, "total": p.total})]
        if p.phase == VERIFIED:
            return [line(status="Verifying Checksum", progressDetail={}, id=lid),
                    line(status="Download complete", progressDetail={}, id=lid),
                    line(status="Extracting", id=lid, progress=bar(p.total, p.total),
                          progressDetail={"current": p.total, "total": p.total})]
        if p.phase == DONE and self._last.get(lid) != -1:
            return [line(status="Pull complete", progressDetail={}, id=lid)]
        return []


def pull_stream(d: DockerDeps, image: str, credentials: Credentials | None) -> Iterator[bytes]:
    """The response body of POST /images/create: progress lines, then the outcome (an error
    is the stream's last line, `{"error": ..., "errorDetail": {"message": ...}}`)."""
    before = d.images.status(image)
    name, _, tag = image.rpartition(":") if "@" not in image else (image, "", "")
    if "/" in tag:
        name, tag = image, "latest"
    yield line(status=f"Pulling from {name or image}", id=tag or "latest")
    drawer = Drawer()
    outcome: Outcome[ImageRecord] = Outcome()
    for item in in_worker(lambda report: d.images.pull(image, credentials, progress=report),
                          "docker-pull", outcome):
        yield from drawer.lines(item)
    if outcome.value is None:
        yield error_line(outcome.error or RuntimeError("the pull ended without a result"))
        return
    record = outcome.value
    digest = record.repo_digests[-1].rsplit("@", 1)[-1] if record.repo_digests else record.id
    d.journal.add("image", "pull", image, name=image)
    yield line(status=f"Digest: {digest}")
    fresh = before is None or before.id != record.id
    yield line(status=f"Status: {'Downloaded newer image' if fresh else 'Image is up to date'}"
               f" for {image}")
