"""A push as Docker's JSON progress stream: "The push refers to repository [R]", per layer
"Preparing", "Pushing" current/total, "Pushed" (or "Layer already exists", "Mounted from"),
then "TAG: digest: D size: N" and the aux record the CLI reads the digest from."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from crid.docker.deps import DockerDeps
from crid.docker.progress import Outcome, bar, error_line, in_worker, line
from imagestore import (
    DEFAULT_TAG,
    Credentials,
    ImageNotFound,
    InvalidReference,
    PushEvent,
    PushResult,
    Reference,
    parse_reference,
)

DRAW_STEP = 512 * 1024


def push_targets(d: DockerDeps, name: str, tag: str) -> list[str]:
    """The stored tags to push for `name` and `tag`: that one tag, or with no tag every tag
    of the repository (as `docker push repo` does). An unqualified name means the repository
    of that path on whichever registry the stored tag names (the image store keeps short
    names under its short-name registries).

    Raises:
        InvalidReference: the name carries a tag or digest, or is malformed.
        ImageNotFound: no image has such a tag.
    """
    if "@" in name or ":" in name.rsplit("/", 1)[-1]:
        raise InvalidReference(f"push: {name[:100]!r} must be a repository without a tag "
                               "(the tag goes in ?tag=)")
    parse_reference(name)  # InvalidReference for a malformed name
    found = sorted({t for r in d.images.list() for t in r.repo_tags
                    if _same_repo(name, parse_reference(t)) and
                    (not tag or parse_reference(t).tag == tag)})
    if not found:
        raise ImageNotFound(f"An image does not exist locally with the tag: "
                            f"{name[:200]}{':' + tag[:128] if tag else ''}")
    return found


def _same_repo(name: str, stored: Reference) -> bool:
    return parse_reference(name, stored.domain).name == stored.name


def push_stream(d: DockerDeps, name: str, targets: list[str],
                credentials: Credentials | None) -> Iterator[bytes]:
    """The response body of POST /images/{name}/push."""
    yield line(status="The push refers to repository "
               f"[{parse_reference(targets[0]).name if targets else name}]")
    for target in targets:
        outcome: Outcome[PushResult] = Outcome()
        last: dict[str, int] = {}
        for ev in in_worker(_pusher(d, target, credentials), "docker-push", outcome):
            yield from _draw(ev, last)
        if outcome.value is None:
            yield error_line(outcome.error or RuntimeError("the push ended without a result"))
            return
        d.journal.add("image", "push", target, name=target)
        yield from _result(outcome.value)


def _pusher(d: DockerDeps, target: str, credentials: Credentials | None
            ) -> Callable[[Callable[[PushEvent], None]], PushResult]:
    return lambda report: d.images.push(target, target, credentials, report)


def _draw(ev: PushEvent, last: dict[str, int]) -> list[bytes]:
    if ev.status != "Pushing":
        return [line(status=ev.status, progressDetail={}, id=ev.id)]
    if ev.current - last.get(ev.id, -DRAW_STEP) < DRAW_STEP and ev.current < ev.total:
        return []
    last[ev.id] = ev.current
    return [line(status="Pushing", id=ev.id, progress=bar(ev.current, ev.total),
                 progressDetail={"current": ev.current, "total": ev.total})]


def _result(r: PushResult) -> list[bytes]:
    tag = r.target.tag or DEFAULT_TAG
    return [line(status=f"{tag}: digest: {r.digest} size: {r.size}", progressDetail={}),
            line(progressDetail={}, aux={"Tag": tag, "Digest": str(r.digest), "Size": r.size})]

