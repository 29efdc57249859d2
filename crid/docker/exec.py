"""Exec endpoints: create, start (hijacked), inspect, resize.

An exec instance lives in memory (as in Docker, execs do not survive the daemon); its
process is started by the same runtime exec the CRI's streaming server uses.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

from crid.docker.containers_view import find
from crid.docker.deps import DockerDeps
from crid.docker.errors import BadRequest, Conflict
from crid.docker.http import Hijack, Request, Response, json_response
from crid.docker.router import Router
from crid.docker.streams import run_session
from crid.errors import NotFound
from crid.streaming.backend.exec_process import start_exec
from crid.streaming.backend.seams import ExecTarget
from crid.streaming.protocol import ExecRequest, TerminalSize
from crid.streaming.protocol.backend import ProcessHandle

MAX_EXECS = 4096


@dataclass
class ExecInstance:
    id: str
    docker_id: str
    container_id: str  # the CRI container
    cmd: list[str]
    tty: bool
    stdin: bool
    stdout: bool
    stderr: bool
    env: list[str]
    user: str
    working_dir: str
    privileged: bool
    running: bool = False
    started: bool = False
    exit_code: int | None = None
    pid: int = 0
    handle: ProcessHandle | None = field(default=None, repr=False)


class ExecRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._execs: dict[str, ExecInstance] = {}

    def add(self, e: ExecInstance) -> None:
        with self._lock:
            self._execs[e.id] = e
            if len(self._execs) > MAX_EXECS:  # drop the oldest finished ones
                for key in [k for k, v in self._execs.items() if v.exit_code is not None][:64]:
                    self._execs.pop(key)

    def get(self, exec_id: str) -> ExecInstance:
        with self._lock:
            e = self._execs.get(exec_id)
        if e is None:
            raise NotFound(f"No such exec instance: {exec_id[:80]}")
        return e

    def ids_of(self, docker_id: str) -> list[str]:
        with self._lock:
            return [k for k, v in self._execs.items() if v.docker_id == docker_id]


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{key} must be a list of strings")
    return value


def create(d: DockerDeps, execs: ExecRegistry, req: Request) -> Response:
    body = req.json({})
    if not isinstance(body, dict):
        raise BadRequest("exec config must be a JSON object")
    cmd = _strings(body, "Cmd")
    if not cmd:
        raise BadRequest("No exec command specified")
    c = find(d, req.params["id"])
    if not c.running or c.record is None:
        raise Conflict(f"Container {c.id} is not running")
    for key in ("Tty", "AttachStdin", "AttachStdout", "AttachStderr", "Privileged"):
        if not isinstance(body.get(key, False), bool):
            raise BadRequest(f"{key} must be a boolean")
    for key in ("User", "WorkingDir"):
        if not isinstance(body.get(key) or "", str):
            raise BadRequest(f"{key} must be a string")
    e = ExecInstance(secrets.token_hex(32), c.id, c.record.id, cmd, bool(body.get("Tty")),
                     bool(body.get("AttachStdin")), bool(body.get("AttachStdout")),
                     bool(body.get("AttachStderr")), _strings(body, "Env"),
                     body.get("User") or "", body.get("WorkingDir") or "",
                     bool(body.get("Privileged")))
    if e.user and not all(p.isdigit() for p in e.user.split(":")):
        raise BadRequest(f"exec user {e.user[:40]!r}: only numeric uid[:gid] is served")
    execs.add(e)
    return json_response({"Id": e.id}, status=201)


def _process(d: DockerDeps, e: ExecInstance) -> dict[str, Any]:
    process = d.containers.exec_process(e.container_id)
    if e.env:
        names = {v.partition("=")[0] for v in e.env}
        process["env"] = [v for v in process.get("env", [])
                          if v.partition("=")[0] not in names] + e.env
    if e.working_dir:
        process["cwd"] = e.working_dir
    if e.user:
        uid, _, gid = e.user.partition(":")
        process["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    return process


def start(d: DockerDeps, execs: ExecRegistry, req: Request) -> Response | Hijack:
    e = execs.get(req.params["id"])
    body = req.json({})
    if not isinstance(body, dict):
        raise BadRequest("exec start config must be a JSON object")
    if e.started:
        raise Conflict(f"exec {e.id[:12]} has already been started")
    d.containers.get(e.container_id)  # NotFound when the container went meanwhile
    e.started = True
    target = ExecTarget(e.container_id, _process(d, e))
    detach = body.get("Detach") is True
    xreq = ExecRequest(e.container_id, tuple(e.cmd), tty=e.tty, stdin=e.stdin and not detach,
                       stdout=e.stdout and not detach, stderr=e.stderr and not e.tty and not detach)

    async def open_handle() -> ProcessHandle:
        return start_exec(d.runtime.rt, target, xreq, d.console_dir)

    def on_start(handle: ProcessHandle) -> None:
        e.handle, e.running = handle, True
        e.pid = getattr(getattr(handle, "created", None), "pid", 0)

    def on_exit(code: int) -> None:
        e.exit_code, e.running, e.handle = code, False, None

    if detach:
        handle = start_exec(d.runtime.rt, target, xreq, d.console_dir)
        on_start(handle)
        threading.Thread(target=_reap, args=(handle, on_exit), daemon=True).start()
        return Response(200, b"", content_type="")
    return Hijack(lambda sock, rest: _serve(sock, rest, open_handle, e, on_start, on_exit))


def _reap(handle: ProcessHandle, on_exit: Any) -> None:
    async def wait() -> int:
        try:
            return await handle.wait()
        finally:
            handle.close()
    on_exit(asyncio.run(wait()))


def _serve(sock: Any, rest: bytes, open_handle: Any, e: ExecInstance, on_start: Any,
           on_exit: Any) -> None:
    try:
        run_session(sock, rest, open_handle, e.tty, on_start, on_exit)
    finally:
        e.running = False
        if e.exit_code is None:
            e.exit_code = 126  # it never ran, or the session broke before its exit was known


def inspect(d: DockerDeps, execs: ExecRegistry, req: Request) -> Response:
    e = execs.get(req.params["id"])
    return json_response({
        "ID": e.id, "Running": e.running, "ExitCode": e.exit_code, "CanRemove": False,
        "ContainerID": e.docker_id, "DetachKeys": "", "OpenStdin": e.stdin,
        "OpenStderr": e.stderr, "OpenStdout": e.stdout, "Pid": e.pid,
        "ProcessConfig": {"tty": e.tty, "entrypoint": e.cmd[0], "arguments": e.cmd[1:],
                          "privileged": e.privileged, "user": e.user}})


def resize(d: DockerDeps, execs: ExecRegistry, req: Request) -> Response:
    e = execs.get(req.params["id"])
    h, w = req.int_arg("h", 0) or 0, req.int_arg("w", 0) or 0
    if e.handle is None:
        raise Conflict(f"exec {e.id[:12]} is not running")
    if h and w:
        e.handle.resize(TerminalSize(width=w, height=h))
    return Response(200, b"", content_type="text/plain; charset=utf-8")


def register(router: Router, d: DockerDeps) -> None:
    execs = ExecRegistry()
    router.add("POST", "/containers/{id}/exec", lambda req: create(d, execs, req))
    router.add("POST", "/exec/{id}/start", lambda req: start(d, execs, req))
    router.add("GET", "/exec/{id}/json", lambda req: inspect(d, execs, req))
    router.add("POST", "/exec/{id}/resize", lambda req: resize(d, execs, req))
