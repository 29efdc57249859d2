"""What a monitor's spawner is given (``runtime.launch.spawners.make_spawner``), as typed records,
and their one wire codec (``to_wire``/``from_wire``) for the zygote's socket.

The records carry what the Runtime has already parsed and worked out: the validated spec of a
container's init, the parsed process and the per-container preparation of an exec. The fork that
spawns the process thus reads and parses no config.json and no process object again.

Why pickle: the channel is the private socketpair between a Runtime's process and the zygote it
started (the same user, the same code; whoever can write to it can already ask for any process
as root), and pickle restores nested frozen records exactly, several times faster than the
validating parser. Nothing from outside (a bundle, a CRI request) is ever unpickled: those are
parsed by ``runtime.spec`` before they become records.
"""

from __future__ import annotations

import pickle
from typing import Any

from runtime.launch.execprep import ExecPrep
from runtime.monitor.launch import MonitorRequest
from runtime.records import dataclass
from runtime.seccomp import CompiledFilter
from runtime.spec.model import Process, Spec


@dataclass(frozen=True)
class InitParams:
    """A container's init: ``spec`` (validated) of the bundle at ``bundle`` (relative paths
    resolve there), the exec fifo the init waits on, the runtime-spec ``state`` its hooks get,
    the Runtime's view of the host's cgroups (``runtime.cgroup_seam.host_view``; the Runtime
    has made the container's) and its compiled seccomp filter (None: unconfined)."""

    id: str
    bundle: str
    spec: Spec
    exec_fifo: str
    state: dict[str, Any]
    cgroups: dict[str, Any]
    seccomp: CompiledFilter | None = None
    no_pivot: bool = False


@dataclass(frozen=True)
class ExecParams:
    """A process exec'd into the running container ``id`` (state directory ``bundle``), whose
    init is ``pid``: ``process`` (validated) and what every exec into it needs (``prepared``)."""

    id: str
    bundle: str
    pid: int
    process: Process
    prepared: ExecPrep


SpawnerParams = InitParams | ExecParams
_PROTOCOL = 5


def to_wire(request: MonitorRequest, fds: dict[str, Any]) -> bytes:
    """A monitor request (its spawner one of the records above) and the index of its attached
    fds as the bytes of one zygote datagram."""
    return pickle.dumps((request, fds), _PROTOCOL)


def from_wire(data: bytes) -> tuple[MonitorRequest, dict[str, Any]]:
    """Inverse of ``to_wire``. Raises ValueError on anything else."""
    try:
        request, fds = pickle.loads(data)  # from our own process's zygote socket only
    except Exception as e:  # pickle raises whatever a malformed stream makes it raise
        raise ValueError(f"malformed monitor request: {e}") from e
    if not isinstance(request, MonitorRequest) or not isinstance(fds, dict):
        raise ValueError(f"malformed monitor request: {type(request).__name__}")
    if not isinstance(request.spawner, InitParams | ExecParams):
        raise ValueError(f"unknown spawner parameters {type(request.spawner).__name__}")
    return request, fds
