"""The Exec, Attach and PortForward RPCs: validate, store the request with the streaming
server, return its URL. The streams themselves run on the streaming server
(crid.streaming.protocol), over crid.streaming.backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from crid.api import api_pb2 as pb
from crid.errors import InvalidArgument
from crid.streaming.protocol import (
    AttachRequest,
    ExecRequest,
    PortForwardRequest,
)


class SessionTargets(Protocol):
    """What the RPCs check before handing out a URL (crid.streaming.backend.DaemonTargets)."""

    def running_id(self, container_id: str, what: str) -> str:
        """Full id of a running container. Raises NotFound, FailedPrecondition."""

    def ready_pod_id(self, pod_id: str) -> str:
        """Full id of a ready pod. Raises NotFound, FailedPrecondition."""


class UrlIssuer(Protocol):
    """The streaming server's side that stores requests under tokens."""

    def request_exec(self, request: ExecRequest) -> str: ...

    def request_attach(self, request: AttachRequest) -> str: ...

    def request_port_forward(self, request: PortForwardRequest) -> str: ...


@dataclass
class StreamingDeps:
    server: UrlIssuer
    targets: SessionTargets


def _check_stdio(what: str, tty: bool, stdin: bool, stdout: bool, stderr: bool) -> None:
    # The kubelet's streaming server refuses these two the same way.
    if tty and stderr:
        raise InvalidArgument(f"{what}: tty and stderr cannot both be true (a terminal has "
                              "one output stream)")
    if not (stdin or stdout or stderr):
        raise InvalidArgument(f"{what}: one of stdin, stdout or stderr must be set")


def _required(value: str, what: str) -> str:
    if not value:
        raise InvalidArgument(f"{what} is required")
    return value


def exec_rpc(d: StreamingDeps, req: pb.ExecRequest) -> pb.ExecResponse:
    cid = _required(req.container_id, "container id")
    if not req.cmd:
        raise InvalidArgument(f"exec in container {cid}: the command is empty")
    _check_stdio(f"exec in container {cid}", req.tty, req.stdin, req.stdout, req.stderr)
    full = d.targets.running_id(cid, "exec in")
    return pb.ExecResponse(url=d.server.request_exec(ExecRequest(
        full, tuple(req.cmd), req.tty, req.stdin, req.stdout, req.stderr)))


def attach_rpc(d: StreamingDeps, req: pb.AttachRequest) -> pb.AttachResponse:
    cid = _required(req.container_id, "container id")
    _check_stdio(f"attach to container {cid}", req.tty, req.stdin, req.stdout, req.stderr)
    full = d.targets.running_id(cid, "attach to")
    return pb.AttachResponse(url=d.server.request_attach(AttachRequest(
        full, req.tty, req.stdin, req.stdout, req.stderr)))


def port_forward_rpc(d: StreamingDeps, req: pb.PortForwardRequest) -> pb.PortForwardResponse:
    pod_id = d.targets.ready_pod_id(_required(req.pod_sandbox_id, "pod sandbox id"))
    return pb.PortForwardResponse(url=d.server.request_port_forward(PortForwardRequest(
        pod_id, tuple(req.port))))
