"""Typed requests and results of ``runtime.lifecycle.Runtime`` (its boundary objects)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.records import dataclass, field
from runtime.spec.model import Config
from runtime.state import Status

OCI_VERSION = "1.2.0"
# What one request to the zygote can carry beside its own fds (SCM_MAX_FD is 253).
MAX_PRESERVED_FDS = 240


@dataclass(frozen=True)
class CreateRequest:
    """``create`` parameters. stdio: fds the container inherits (CLI); None: the monitor holds
    pipes (or the pty) and logs them to ``log_path`` / serves them on ``attach_socket``.
    Defaults for exit_file and attach_socket live in the container's state directory.
    wait_fd: also return a read fd that yields the exit record (CLI ``run``).
    preserve_fds: fds the process gets as 3, 4, ... (runc's ``--preserve-fds``).
    config: the bundle's config.json as its caller read and validated it (crid builds it, the
    CLI reads it), handed down to the init as such; None: ``create`` reads it from ``bundle``."""

    id: str
    bundle: Path
    pid_file: Path | None = None
    console_socket: Path | None = None
    log_path: Path | None = None
    exit_file: Path | None = None
    attach_socket: Path | None = None
    stdin: bool = False
    stdin_once: bool = False
    stdio: tuple[int, int, int] | None = None
    no_pivot: bool = False
    wait_fd: bool = False
    await_attach: bool = False
    timeout: float = 60.0
    preserve_fds: tuple[int, ...] = ()
    config: Config | None = None


@dataclass(frozen=True)
class Created:
    """Result of ``create``/``exec``: process and monitor pids, where the exit will be recorded,
    and (when asked) a read fd that yields the exit record when the process ends."""

    id: str
    pid: int
    monitor_pid: int
    exit_file: str
    attach_socket: str
    wait_fd: int | None = None


@dataclass(frozen=True)
class ExecRequest:
    """``exec`` parameters; ``process`` is an OCI process object (config.json ``process``).

    stdio: fds the process inherits (ExecSync: pipes); None: the monitor holds pipes or the pty
    and serves them on ``attach_socket`` (streaming exec; set ``await_attach`` so output
    before the caller connects, and an exit before it connects, are kept for it).
    brief: a process whose exit is read from ``wait_fd`` only (ExecSync, streaming exec): its
    monitor spawns it directly, counts no OOM kills, and writes no exit file unless
    ``exit_file`` is given. Faster (one spawner child less); its monitor keeps somewhat more
    memory for as long as the process runs. preserve_fds: as in ``CreateRequest``."""

    process: dict[str, Any]
    stdio: tuple[int, int, int] | None = None
    console_socket: Path | None = None
    exit_file: Path | None = None
    attach_socket: Path | None = None
    log_path: Path | None = None
    stdin: bool = False
    stdin_once: bool = False
    pid_file: Path | None = None
    wait_fd: bool = False
    await_attach: bool = False
    timeout: float = 60.0
    brief: bool = False
    preserve_fds: tuple[int, ...] = ()


@dataclass(frozen=True)
class State:
    """The runtime-spec state of one container (``to_dict`` is the JSON)."""

    id: str
    status: Status
    pid: int
    bundle: str
    annotations: dict[str, str] = field(default_factory=dict)
    created: str = ""
    rootfs: str = ""
    owner: str = ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"ociVersion": OCI_VERSION, "id": self.id,
                             "status": self.status.value, "bundle": self.bundle}
        if self.status in (Status.CREATED, Status.RUNNING, Status.PAUSED):
            d["pid"] = self.pid
        if self.annotations:
            d["annotations"] = self.annotations
        return d
