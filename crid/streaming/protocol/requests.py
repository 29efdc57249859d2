"""Domain requests behind the Exec, Attach and PortForward URLs (plain dataclasses, no protobuf)."""

from __future__ import annotations

from dataclasses import dataclass, field

from crid.streaming.protocol.errors import RequestError


@dataclass(frozen=True)
class TerminalSize:
    """A terminal size as the resize stream carries it (`{"Width":..,"Height":..}`)."""

    width: int
    height: int


@dataclass(frozen=True)
class ExecRequest:
    """Run `cmd` in container `container_id` with the given stdio."""

    container_id: str
    cmd: tuple[str, ...]
    tty: bool = False
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True


@dataclass(frozen=True)
class AttachRequest:
    """Attach to the main process of container `container_id`."""

    container_id: str
    tty: bool = False
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True


@dataclass(frozen=True)
class PortForwardRequest:
    """Forward ports into the network namespace of pod `pod_sandbox_id`; empty `ports` = any."""

    pod_sandbox_id: str
    ports: tuple[int, ...] = field(default_factory=tuple)


def _check_id(what: str, value: str) -> None:
    if not value or len(value) > 256 or any(c in value for c in "/\0\n"):
        raise RequestError(f"invalid {what} {value!r}")


def _check_stdio(req: ExecRequest | AttachRequest) -> None:
    # The kubelet refuses a session with no stream at all; tty+stderr is tty alone.
    if not (req.stdin or req.stdout or req.stderr):
        raise RequestError(
            f"{type(req).__name__} for container {req.container_id}: "
            "one of stdin, stdout or stderr must be set")


def validate_exec(req: ExecRequest) -> ExecRequest:
    """Return `req` normalised (stderr off with a tty, as the kubelet does).

    Raises:
        RequestError: empty container id or command, or no stream requested.
    """
    _check_id("container id", req.container_id)
    if not req.cmd or not all(isinstance(a, str) for a in req.cmd):
        raise RequestError(f"exec in container {req.container_id}: command must not be empty")
    _check_stdio(req)
    return ExecRequest(req.container_id, tuple(req.cmd), req.tty, req.stdin, req.stdout,
                       req.stderr and not req.tty)


def validate_attach(req: AttachRequest) -> AttachRequest:
    """Return `req` normalised. Raises RequestError as `validate_exec`."""
    _check_id("container id", req.container_id)
    _check_stdio(req)
    return AttachRequest(req.container_id, req.tty, req.stdin, req.stdout,
                         req.stderr and not req.tty)


def validate_port_forward(req: PortForwardRequest) -> PortForwardRequest:
    """Return `req` with ports as a tuple. Raises RequestError on a bad id or port."""
    _check_id("pod sandbox id", req.pod_sandbox_id)
    for p in req.ports:
        if not isinstance(p, int) or not 0 < p < 65536:
            raise RequestError(f"port forward to pod {req.pod_sandbox_id}: invalid port {p!r}")
    return PortForwardRequest(req.pod_sandbox_id, tuple(req.ports))
