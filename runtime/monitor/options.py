"""What one monitor runs by (``MonitorOptions``, which crosses the zygote socket) and the
``ChildSpawner`` it starts its process with: shared by the set-up (``runtime.monitor.setup``),
the serving loop (``runtime.monitor.loop``) and their callers."""

from __future__ import annotations

from typing import Protocol

from runtime.monitor.stdio import ChildStdio
from runtime.records import dataclass


@dataclass(frozen=True)
class MonitorOptions:
    """What one monitor does (JSON-serialisable: it crosses the zygote socket).

    ``stdio_mode``: "pipes" (monitor holds stdio, logs it), "inherit" (the requester's fds go to
    the process untouched), "terminal" (pty via console socket, master held by the monitor) or
    "console" (terminal whose master goes to the requester's ``console_socket``).
    ``await_attach``: the requester is about to attach; output produced before it connects is
    kept for it (bounded), and an exit before it connects waits for it a little.
    ``brief``: the process is short-lived and its monitor with it (ExecSync): it is spawned by
    the monitor itself rather than from a throwaway child (see ``handoff.set_up_in_child``: the
    memory that child saves matters only for a monitor that lives long), which saves a fork and a
    second parse of the spec for the OOM count at the end; its exit never reports an OOM kill.
    """

    container_id: str
    stdio_mode: str = "pipes"
    log_path: str | None = None
    exit_file: str | None = None
    attach_socket: str | None = None
    console_socket: str | None = None
    stdin: bool = False
    stdin_once: bool = False
    await_attach: bool = False
    brief: bool = False

    @classmethod
    def from_dict(cls, d: dict) -> MonitorOptions:
        return cls(**d)


class ChildSpawner(Protocol):
    """Starts the monitored process (the container init, or an exec'd process)."""

    def spawn(self, stdio: ChildStdio) -> int:
        """Start the process as a child of the caller; return its pid. Raises OCIRuntimeError."""
        ...

    def oom_kill_count(self) -> int:
        """The OOM kills counted so far in the process's cgroup (0 when unknown)."""
        ...

    def oom_counter(self) -> tuple[str, str] | None:
        """(directory, keyed file) whose ``oom_kill`` the monitor may read at the end itself,
        rather than building the spawner again for ``oom_kill_count``; None: it builds it."""
        ...

    def leftover_group(self) -> str | None:
        """The cgroup directory whose processes the monitor ends once the process has exited
        (``runtime.monitor.leftovers``): a container init without a PID namespace of its
        own; None for everything else."""
        ...
