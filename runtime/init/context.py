"""Parameter objects for creating a container init and for exec'ing into a running container."""

from __future__ import annotations

from typing import Any

from runtime.records import dataclass, field
from runtime.seccomp import CompiledFilter
from runtime.spec.model import Process, Spec


@dataclass(frozen=True)
class InitContext:
    """Everything ``spawn_init`` needs.

    spec: the validated config. bundle: directory holding config.json (relative root.path and
    bind sources are resolved against it). stdin/stdout/stderr: fds in the caller dup'ed onto
    0/1/2 of the container process when process.terminal is false (None: inherit the caller's).
    console_socket: unix socket path that receives the pty master (required when terminal).
    exec_fifo: path of a FIFO made by the caller; the init blocks opening it for writing until
    ``start`` opens it for reading (runc protocol). None: exec right after set-up (``run``).
    state: OCI state dict given on stdin to createContainer/startContainer hooks ("pid" and
    "status" are filled in by the init). preserve_fds: fds in the caller that the process gets
    as 3, 4, ... (runc's --preserve-fds passes the caller's own 3..3+n-1).
    no_pivot: use MS_MOVE+chroot instead of pivot_root (forced automatically on an initramfs).
    compiled_seccomp: linux.seccomp already compiled by the caller (None: compiled here).
    """

    spec: Spec
    bundle: str
    container_id: str
    stdin: int | None = None
    stdout: int | None = None
    stderr: int | None = None
    console_socket: str | None = None
    exec_fifo: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    preserve_fds: tuple[int, ...] = ()
    no_pivot: bool = False
    compiled_seccomp: CompiledFilter | None = None


@dataclass(frozen=True)
class ExecContext:
    """Everything ``exec_in`` needs to start an extra process in a running container.

    pid: host pid of the container's init. process: what to run (user, env, cwd, caps, rlimits,
    terminal, noNewPrivileges, apparmorProfile as in config.json). seccomp: raw linux.seccomp
    object to install, or None. stdio / console_socket / compiled_seccomp: as in InitContext.
    cgroup_dirs: the init's cgroup directories (host paths, as ``runtime.launch.execprep``
    keeps them per container); None: read from /proc/<pid>/cgroup.
    """

    pid: int
    process: Process
    container_id: str = ""
    seccomp: dict[str, Any] | None = None
    stdin: int | None = None
    stdout: int | None = None
    stderr: int | None = None
    console_socket: str | None = None
    preserve_fds: tuple[int, ...] = ()
    cgroup_dirs: tuple[str, ...] | None = None
    compiled_seccomp: CompiledFilter | None = None
