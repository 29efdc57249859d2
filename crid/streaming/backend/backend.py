"""crid's StreamingBackend: exec, attach and port-forward over containers and pods."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from pathlib import Path

from crid.errors import CridError
from crid.streaming.backend.attach_process import AttachProcess, connect_attach
from crid.streaming.backend.exec_process import ExecProcess, start_exec
from crid.streaming.backend.netns_dialer import connect_local
from crid.streaming.backend.seams import ExecLauncher, StreamTargets
from crid.streaming.protocol import AttachRequest, BackendError, ExecRequest


@dataclass(frozen=True)
class BackendOptions:
    console_dir: Path  # console sockets of tty execs (keep the path short: 108-byte limit)


class CridStreamingBackend:
    """`crid.streaming.protocol.StreamingBackend` over the daemon's containers, runtime and pods.

    Blocking work (the runtime's exec, connecting a unix socket) runs in worker threads; the
    methods raise BackendError only.
    """

    def __init__(self, opts: BackendOptions, targets: StreamTargets,
                 launcher: ExecLauncher) -> None:
        self._o, self._targets, self._launcher = opts, targets, launcher

    async def exec(self, request: ExecRequest) -> ExecProcess:
        def start() -> ExecProcess:
            target = _lookup(lambda: self._targets.exec_target(request.container_id))
            return start_exec(self._launcher, target, request, self._o.console_dir)
        return await asyncio.to_thread(start)

    async def attach(self, request: AttachRequest) -> AttachProcess:
        cid = request.container_id
        path = await asyncio.to_thread(_lookup, lambda: self._targets.attach_socket(cid))
        sock = await asyncio.to_thread(connect_attach, path, cid)
        return AttachProcess(sock, request, exit_code=lambda: self._exit_code(cid))

    def _exit_code(self, cid: str) -> int | None:
        try:
            return self._targets.exit_code(cid)
        except CridError:
            return None

    async def port_forward(self, pod_sandbox_id: str, port: int) -> socket.socket:
        netns = _lookup(lambda: self._targets.pod_netns(pod_sandbox_id))
        return await connect_local(netns, port, f"pod {pod_sandbox_id}")


def _lookup(fn):  # type: ignore[no-untyped-def]
    """Runs a targets lookup; a domain error becomes the BackendError the server reports."""
    try:
        return fn()
    except CridError as e:
        raise BackendError(str(e)) from e
