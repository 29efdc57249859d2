"""Container endpoints: create, start, stop, restart, kill, wait, remove, list, inspect, logs,
attach, resize."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

from crid.containers.record import ContainerState
from crid.docker import exec as exec_
from crid.docker import lifecycle
from crid.docker.containers_view import DockerContainer, all_containers, find
from crid.docker.create_body import parse_create
from crid.docker.deps import DockerDeps
from crid.docker.errors import BadRequest, Conflict
from crid.docker.filters import parse_filters
from crid.docker.http import Hijack, Request, Response, empty, json_response
from crid.docker.inspect import inspect, status_word, summary
from crid.docker.logs import LogOptions, log_stream, parse_time
from crid.docker.router import Router
from crid.docker.sizes import sizes
from crid.docker.stats import stats
from crid.docker.streams import run_session
from crid.docker.top import top
from crid.errors import NotFound
from crid.streaming.backend.attach_process import AttachProcess, connect_attach
from crid.streaming.protocol import AttachRequest
from runtime.api import connect_unix, framing

_PS_FILTERS = ("id", "name", "label", "status", "exited", "ancestor")
_WAIT_CONDITIONS = ("", "not-running", "next-exit", "removed")
ACCEPT_TIMEOUT = 5.0


def create(d: DockerDeps, req: Request) -> Response:
    body = parse_create(req.json())
    cid = lifecycle.create(d, req.arg("name"), body)
    return json_response({"Id": cid, "Warnings": []}, status=201)


def _ps_match(c: DockerContainer, f: dict[str, list[str]]) -> bool:
    checks = {
        "id": lambda v: c.id.startswith(v),
        "name": lambda v: v.lstrip("/") in c.name or fnmatch.fnmatchcase(c.name, v),
        "label": lambda v: (v.partition("=")[0] in c.body.labels and
                            (not v.partition("=")[1] or
                             c.body.labels[v.partition("=")[0]] == v.partition("=")[2])),
        "status": lambda v: status_word(c) == v,
        "exited": lambda v: c.state is ContainerState.EXITED and c.record is not None and
        str(c.record.exit_code) == v,
        "ancestor": lambda v: c.body.image == v or (c.record is not None and
                                                     c.record.image_id.startswith(v)),
    }
    # Docker ANDs label filters and ORs the values of every other filter (docker-compose
    # asks for project=X and oneoff=False at once).
    return all((all if name == "label" else any)(checks[name](v) for v in values)
               for name, values in f.items())


def list_containers(d: DockerDeps, req: Request) -> Response:
    f = parse_filters(req, _PS_FILTERS)
    shown = [c for c in all_containers(d)
             if (req.flag("all") or c.running or "status" in f) and _ps_match(c, f)]
    limit = req.int_arg("limit", -1)
    if limit is not None and limit > 0:
        shown = shown[:limit]
    if req.flag("size"):
        return json_response([{**summary(d, c), **sizes(d, c)} for c in shown])
    return json_response([summary(d, c) for c in shown])


def _inspect(d: DockerDeps, req: Request) -> Response:
    c = find(d, req.params["id"])
    return json_response({**inspect(d, c), **(sizes(d, c) if req.flag("size") else {})})


def _timeout(req: Request) -> int | None:
    return req.int_arg("t", None) if req.arg("t") else req.int_arg("timeout", None)


def _wait(d: DockerDeps, req: Request) -> Response:
    """Answers the head at once (the CLI waits for it before starting the container), then
    the body when the condition is met."""
    condition = req.arg("condition")
    if condition not in _WAIT_CONDITIONS:
        raise BadRequest(f"invalid condition {condition[:30]!r}")
    c = find(d, req.params["id"])
    sub = d.events.subscribe()

    def body() -> Iterator[bytes]:
        try:
            yield from _wait_body(d, c, condition, sub)
        finally:
            sub.close()
    return Response(200, body())


def _wait_body(d: DockerDeps, c: DockerContainer, condition: str, sub: Any) -> Iterator[bytes]:
    code = c.record.exit_code if c.record is not None else 0
    if condition == "removed":
        sub.close()
        yield _status(lifecycle.REMOVALS.wait(c.id, lambda: _exists(d, c.id)))
        return
    if condition in ("", "not-running") and not c.running:
        yield _status(code)
        return
    for ev in sub.events(poll=0.5):
        if ev.pod_id != c.id:
            continue
        if ev.kind == "STOPPED" and ev.payload is not None:
            code = ev.payload.exit_code
            break
    yield _status(code)


def _status(code: int) -> bytes:
    return json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n"


def _exists(d: DockerDeps, docker_id: str) -> bool:
    try:
        find(d, docker_id)
        return True
    except NotFound:
        return False


def logs(d: DockerDeps, req: Request) -> Response:
    c = find(d, req.params["id"])
    if not (req.flag("stdout") or req.flag("stderr")):
        raise BadRequest("Bad parameters: you must choose at least one stream")
    tail = req.arg("tail", "all")
    if tail != "all" and not tail.isdigit():
        raise BadRequest(f"invalid tail {tail[:20]!r}")
    opts = LogOptions(stdout=req.flag("stdout"), stderr=req.flag("stderr"),
                      follow=req.flag("follow"), timestamps=req.flag("timestamps"),
                      since=parse_time(req.arg("since")), until=parse_time(req.arg("until")),
                      tail=None if tail == "all" else int(tail), tty=c.body.tty)
    path = c.record.log_path if c.record is not None else ""

    def running() -> bool:
        with contextlib.suppress(NotFound):
            return find(d, c.id).running
        return False
    kind = "application/vnd.docker.raw-stream" if c.body.tty else \
        "application/vnd.docker.multiplexed-stream"
    return Response(200, log_stream(path, opts, running), content_type=kind)


def attach(d: DockerDeps, req: Request) -> Hijack:
    c = find(d, req.params["id"])
    if c.record is None or c.state is ContainerState.EXITED:
        raise Conflict(f"You cannot attach to a stopped container {c.id}, start it first")
    rec = c.record
    stdin = req.flag("stdin") and c.body.open_stdin
    areq = AttachRequest(rec.id, tty=c.body.tty, stdin=stdin, stdout=req.flag("stdout"),
                         stderr=req.flag("stderr") and not c.body.tty)
    # Connected before the response: the CLI starts the container as soon as it has the
    # 101, and the monitor gives a client only the output written after it connected.
    monitor = _connect_accepted(_attach_socket(d, rec.id), rec.id)

    async def open_handle() -> AttachProcess:
        return AttachProcess(monitor, areq, exit_code=lambda: _exit_code(d, rec.id))
    return Hijack(lambda sock, rest: run_session(sock, rest, open_handle, c.body.tty,
                                                 close_stdin=not c.body.tty))


def _attach_socket(d: DockerDeps, cid: str) -> str:
    state = d.runtime.rt.store.load(cid)
    if state is None or not state.attach_socket:
        raise Conflict(f"container {cid} has no monitor socket to attach to")
    return state.attach_socket


def _connect_accepted(path: str, cid: str) -> socket.socket:
    """A monitor connection the monitor has accepted: connect() returns once the connection
    is queued, and output written before the accept would never reach us. A REOPEN_LOG
    answered by REOPENED proves the accept (reopening the log is harmless)."""
    sock = connect_attach(path, cid)
    sock.setblocking(True)
    sock.settimeout(ACCEPT_TIMEOUT)
    try:
        sock.sendall(framing.encode(framing.REOPEN_LOG))
        reader = framing.FrameReader()
        while not any(kind == framing.REOPENED for kind, _ in reader.feed(_recv(sock))):
            pass
    except (OSError, framing.FrameError) as e:
        sock.close()
        raise Conflict(f"attach to container {cid}: its monitor did not answer: {e}") from e
    sock.setblocking(False)
    return sock


def _recv(sock: socket.socket) -> bytes:
    data = sock.recv(65536)
    if not data:
        raise OSError("the monitor closed the connection")
    return data


def _exit_code(d: DockerDeps, cid: str) -> int | None:
    info = d.runtime.exit_status(cid)
    return info.exit_code if info is not None else None


def resize(d: DockerDeps, req: Request) -> Response:
    c = find(d, req.params["id"])
    h, w = req.int_arg("h", 0), req.int_arg("w", 0)
    if not c.running or c.record is None:
        raise Conflict(f"Container {c.id} is not running")
    if c.body.tty and h and w:
        with connect_unix(_attach_socket(d, c.record.id), 5) as sock:
            sock.sendall(framing.encode_resize(h, w))
    return Response(200, b"", content_type="text/plain; charset=utf-8")


def register(router: Router, d: DockerDeps) -> None:
    router.add("POST", "/containers/create", lambda req: create(d, req))
    router.add("GET", "/containers/json", lambda req: list_containers(d, req))
    router.add("GET", "/containers/{id}/json", lambda req: _inspect(d, req))
    router.add("POST", "/containers/{id}/start",
               lambda req: _done(lambda: lifecycle.start(d, req.params["id"])))
    router.add("POST", "/containers/{id}/stop",
               lambda req: _done(lambda: lifecycle.stop(d, req.params["id"], _timeout(req))))
    router.add("POST", "/containers/{id}/restart",
               lambda req: _done(lambda: lifecycle.restart(d, req.params["id"], _timeout(req))))
    router.add("POST", "/containers/{id}/kill",
               lambda req: _done(lambda: lifecycle.kill(d, req.params["id"], req.arg("signal"))))
    router.add("POST", "/containers/{id}/wait", lambda req: _wait(d, req))
    router.add("DELETE", "/containers/{id}",
               lambda req: _done(lambda: lifecycle.remove(d, req.params["id"],
                                                          req.flag("force"), req.flag("v"))))
    router.add("POST", "/containers/{id}/pause",
               lambda req: _done(lambda: lifecycle.pause(d, req.params["id"])))
    router.add("POST", "/containers/{id}/unpause",
               lambda req: _done(lambda: lifecycle.unpause(d, req.params["id"])))
    router.add("POST", "/containers/{id}/rename",
               lambda req: _done(lambda: lifecycle.rename(d, req.params["id"],
                                                          _required(req, "name"))))
    router.add("GET", "/containers/{id}/top", lambda req: top(d, req))
    router.add("GET", "/containers/{id}/stats", lambda req: stats(d, req))
    router.add("POST", "/containers/prune", lambda req: prune(d, req))
    router.add("GET", "/containers/{id}/logs", lambda req: logs(d, req))
    router.add("POST", "/containers/{id}/attach", lambda req: attach(d, req))
    router.add("POST", "/containers/{id}/resize", lambda req: resize(d, req))
    exec_.register(router, d)


def prune(d: DockerDeps, req: Request) -> Response:
    """Removes every stopped container (label and until filters)."""
    f = parse_filters(req, ("label", "until"))
    until = min((parse_time(v) for v in f.get("until", [])), default=2.0 ** 63)
    gone = []
    for c in all_containers(d):
        if c.running or c.pod.created_at / 1e9 >= until or \
                not _ps_match(c, {"label": f.get("label", [])} if f.get("label") else {}):
            continue
        with contextlib.suppress(NotFound):
            lifecycle.remove(d, c.id, force=False)
            gone.append(c.id)
    return json_response({"ContainersDeleted": gone or None, "SpaceReclaimed": 0})


def _required(req: Request, name: str) -> str:
    value = req.arg(name)
    if not value:
        raise BadRequest(f"query parameter {name} is required")
    return value


def _done(action: Callable[[], None]) -> Response:
    """Run `action`; Docker answers these calls with 204 and no body."""
    action()
    return empty()
