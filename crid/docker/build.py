"""POST /build, answered as Docker's classic builder answers it.

The context archive is read from the request body as it arrives and unpacked by the build
service in a worker thread; the reply is the JSON message stream the CLI prints
(`{"stream": "Step 1/3 : FROM busybox\\n"}`, `{"aux": {"ID": ...}}`, and on failure
`{"errorDetail": {"code": N, "message": ...}, "error": ...}`). A failure before the first
message (a bad context, a Dockerfile that does not parse) is an HTTP error instead, as
Docker's is. A client that goes away cancels the build: the step container and everything
else of the build is removed.
"""

from __future__ import annotations

import io
import json
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from crid import logs
from crid.build.builder import BuildRequest
from crid.build.errors import BuildError
from crid.build.service import BuildJob, BuildService
from crid.docker.build_query import BuildQuery, parse_query
from crid.docker.errors import BadRequest
from crid.docker.filters import parse_filters
from crid.docker.http import Request, Response, json_response
from crid.docker.pull import Drawer
from crid.docker.router import Router
from imagestore import LayerProgress

log = logs.get("crid.docker")
_END = object()
_PEER_CHECK = 0.25  # seconds between checks that the client is still there


def _line(**fields: Any) -> bytes:
    return json.dumps(fields).encode() + b"\r\n"


class _Sink:
    """The builder's output as message lines on a queue; quiet builds hold their text back
    (it is sent only if the build fails, as Docker does)."""

    def __init__(self, q: queue.Queue[Any], quiet: bool) -> None:
        self._q, self._quiet = q, quiet
        self.held: list[str] = []
        self.sent = False
        self._drawer = Drawer()

    def stream(self, text: str) -> None:
        if self._quiet:
            self.held.append(text)
        else:
            self.put(_line(stream=text))

    def aux(self, image_id: str) -> None:
        self.put(_line(aux={"ID": image_id}))

    def status(self, text: str, id: str = "") -> None:
        if not self._quiet:
            self.put(_line(status=text, **({"id": id} if id else {})))

    def pull_progress(self, event: LayerProgress) -> None:
        if not self._quiet:
            for line in self._drawer.lines(event):
                self.put(line)

    def put(self, line: bytes) -> None:
        self.sent = True
        self._q.put(line)


def build(svc: BuildService, req: Request) -> Response:
    """Runs the build; replies once its first message (or error) is known.

    Raises:
        BadRequest (bad query, context or Dockerfile), BodyTooLarge, and the errors of a
        build that failed before saying anything.
    """
    query = parse_query(req)
    q: queue.Queue[Any] = queue.Queue()
    cancel = threading.Event()
    sink = _Sink(q, query.quiet)
    context = io.BufferedReader(req.body_stream(), 1 << 16)
    worker = threading.Thread(target=_work, args=(svc, context, _job(query), sink, q, cancel),
                              name="docker-build", daemon=True)
    worker.start()
    first = q.get()
    if first is _END:
        return Response(200, b"")
    if isinstance(first, BaseException):
        worker.join()
        raise first
    return Response(200, _messages(first, q, worker, cancel, req.peer_gone))


def _job(query: BuildQuery) -> BuildJob:
    request = BuildRequest(
        context=Path("/nonexistent"), dockerfile=query.dockerfile, tags=query.tags,
        build_args=query.build_args, target=query.target, no_cache=query.no_cache,
        pull=query.pull, labels=query.labels, remove_containers=not query.keep_containers)
    return BuildJob(request, query.host_network, query.auth, query.resources,
                    query.keep_containers)


def _work(svc: BuildService, context: io.BufferedReader, job: BuildJob, sink: _Sink,
          q: queue.Queue[Any], cancel: threading.Event) -> None:
    try:
        image_id = svc.run(context, job, sink, cancel.is_set)
        if sink.held:
            sink.put(_line(stream=image_id + "\n"))
    except BaseException as e:  # noqa: BLE001 - every failure ends the stream with its message
        if not sink.sent:
            q.put(e)  # nothing said yet: the handler answers with an HTTP error
            return
        if not isinstance(e, BuildError):
            log.warning("docker build failed", error=str(e), type=type(e).__name__)
        for text in sink.held:
            sink.put(_line(stream=text))
        code = e.code if isinstance(e, BuildError) else 1
        message = str(e) or type(e).__name__
        sink.put(_line(errorDetail={"code": code, "message": message}, error=message))
    finally:
        q.put(_END)


def _messages(first: bytes, q: queue.Queue[Any], worker: threading.Thread,
              cancel: threading.Event, peer_gone: Callable[[], bool]) -> Iterator[bytes]:
    try:
        item: Any = first
        while item is not _END:
            if item is not None:
                yield item
            try:
                item = q.get(timeout=_PEER_CHECK)
            except queue.Empty:
                item = None
                if peer_gone():
                    cancel.set()
    finally:
        # Closed early (the client's connection broke): the build stops and cleans up before
        # this connection's thread goes.
        if worker.is_alive():
            cancel.set()
        worker.join()


def prune(svc: BuildService, req: Request) -> Response:
    """POST /build/prune: the layer cache and its intermediate images (`all`: the entries
    of tagged images too). `keep-storage` and filters other than `until` are refused."""
    filters = parse_filters(req, ("until",))
    if filters.get("until") or req.int_arg("keep-storage", 0):
        raise BadRequest("build cache prune by age or size is not served: the classic "
                         "builder's cache has no per-entry times (prune it all)")
    removed, reclaimed = svc.prune(everything=req.flag("all"))
    return json_response({"CachesDeleted": removed or None, "SpaceReclaimed": reclaimed})


def register(router: Router, svc: BuildService) -> None:
    router.add("POST", "/build", lambda req: build(svc, req), streams_body=True)
    router.add("POST", "/build/prune", lambda req: prune(svc, req))
