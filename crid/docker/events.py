"""`docker events`: what the Docker front door did and saw, as Docker's event records.

Lifecycle calls and image endpoints record their actions (create, start, kill, stop, die,
destroy, pause, unpause, rename; pull, push, tag, untag, delete); exits arrive through the
exit-policy watcher. A bounded journal keeps the recent ones for `since`, and every
`GET /events` stream waits on it for new ones.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from crid.docker.errors import BadRequest
from crid.docker.filters import parse_filters
from crid.docker.http import Request, Response
from crid.docker.logs import parse_time

KEEP = 1024
POLL = 0.5
_FILTERS = ("type", "container", "image", "event", "label", "scope")


@dataclass(frozen=True)
class DockerEvent:
    type: str  # container, image
    action: str
    actor_id: str
    attributes: dict[str, str] = field(default_factory=dict)
    time_ns: int = field(default_factory=time.time_ns)

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Type": self.type, "Action": self.action,
                               "Actor": {"ID": self.actor_id, "Attributes": self.attributes},
                               "scope": "local", "time": self.time_ns // 1_000_000_000,
                               "timeNano": self.time_ns}
        if self.type == "container":  # the pre-1.22 fields the CLI still formats with
            out.update(status=self.action, id=self.actor_id,
                       **({"from": self.attributes["image"]} if "image" in
                          self.attributes else {}))
        return out


class EventJournal:
    """The recent events and the streams waiting for new ones. Thread-safe."""

    def __init__(self, keep: int = KEEP) -> None:
        self._events: deque[tuple[int, DockerEvent]] = deque(maxlen=keep)
        self._seq = 0
        self._cond = threading.Condition()

    def add(self, type_: str, action: str, actor_id: str, **attributes: str) -> None:
        with self._cond:
            self._seq += 1
            self._events.append((self._seq, DockerEvent(type_, action, actor_id,
                                                        dict(attributes))))
            self._cond.notify_all()

    def follow(self, since_ns: int, until_ns: int, alive: Any = lambda: True
               ) -> Iterator[DockerEvent]:
        """The kept events from since_ns, then new ones as they come, until until_ns
        (0: forever) or `alive()` turns false."""
        seen = 0
        if since_ns == 0:  # no since: only what happens from now on
            with self._cond:
                seen = self._seq
        while alive():
            with self._cond:
                fresh = [(s, e) for s, e in self._events if s > seen]
                if not fresh:
                    if until_ns and time.time_ns() >= until_ns:
                        return
                    self._cond.wait(POLL)
                    continue
            for s, e in fresh:
                seen = s
                if until_ns and e.time_ns > until_ns:
                    return
                if e.time_ns >= since_ns:
                    yield e


def _matches(e: DockerEvent, f: dict[str, list[str]]) -> bool:
    checks = {
        "type": lambda v: e.type == v,
        "event": lambda v: e.action == v or e.action.split(":", 1)[0] == v,
        "container": lambda v: e.type == "container" and (
            e.actor_id.startswith(v) or e.attributes.get("name") == v),
        "image": lambda v: e.attributes.get("image") == v or e.actor_id == v or
        e.attributes.get("name") == v,
        "label": lambda v: e.attributes.get(v.partition("=")[0]) == v.partition("=")[2]
        if "=" in v else v in e.attributes,
        "scope": lambda v: v == "local",
    }
    return all(any(checks[name](v) for v in values) for name, values in f.items())


def events(journal: EventJournal, req: Request) -> Response:
    f = parse_filters(req, _FILTERS)
    since, until = parse_time(req.arg("since")), parse_time(req.arg("until"))
    if until and since and until < since:
        raise BadRequest("since must not be after until")
    since_ns, until_ns = int(since * 1e9), int(until * 1e9)

    def body() -> Iterator[bytes]:
        for e in journal.follow(since_ns, until_ns):
            if _matches(e, f):
                yield json.dumps(e.record()).encode() + b"\n"
    return Response(200, body())
