"""``runtime.init``'s two entry points, with a minimal stand-in until that package lands.

The stand-in is NOT a container: it chroots and execs with no namespaces. It exists so the
lifecycle, monitor and zygote can be exercised end to end before ``runtime.init`` is merged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.spec.model import Process, Spec

try:
    from runtime.init.context import ExecContext, InitContext
except ImportError:  # the same parameter objects as runtime.init.context
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
        "status" are filled in by the init). preserve_fds: extra fds 3..3+n-1 kept open across exec.
        no_pivot: use MS_MOVE+chroot instead of pivot_root (forced automatically on an initramfs).
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
        preserve_fds: int = 0
        no_pivot: bool = False


    @dataclass(frozen=True)
    class ExecContext:
        """Everything ``exec_in`` needs to start an extra process in a running container.

        pid: host pid of the container's init. process: what to run (user, env, cwd, caps, rlimits,
        terminal, noNewPrivileges, apparmorProfile as in config.json). seccomp: raw linux.seccomp
        object to install, or None. stdio / console_socket: as in InitContext.
        """

        pid: int
        process: Process
        container_id: str = ""
        seccomp: dict[str, Any] | None = None
        stdin: int | None = None
        stdout: int | None = None
        stderr: int | None = None
        console_socket: str | None = None
        preserve_fds: int = 0

try:
    from runtime.init import exec_in, spawn_init
except ImportError:  # runtime.init has not landed yet on this branch
    def spawn_init(ctx: InitContext, on_created: Callable[[int], None]) -> int:
        pid = os.fork()
        if pid == 0:
            _child(ctx)
        on_created(pid)
        return pid

    def exec_in(ctx: ExecContext) -> int:
        pid = os.fork()
        if pid == 0:
            _dup_stdio(ctx.stdin, ctx.stdout, ctx.stderr)
            os.chroot(f"/proc/{ctx.pid}/root")
            os.chdir(ctx.process.cwd)
            env = dict(e.split("=", 1) for e in ctx.process.env)
            os.execvpe(ctx.process.args[0], list(ctx.process.args), env)
        return pid

    def _dup_stdio(*fds: int | None) -> None:
        for target, fd in enumerate(fds):
            if fd is not None:
                os.dup2(fd, target, inheritable=True)

    def _child(ctx: InitContext) -> None:
        try:
            os.setsid()
            _dup_stdio(ctx.stdin, ctx.stdout, ctx.stderr)
            if ctx.exec_fifo:
                fd = os.open(ctx.exec_fifo, os.O_WRONLY | os.O_CLOEXEC)
                os.write(fd, b"0")
                os.close(fd)
            root = os.path.join(ctx.bundle, ctx.spec.root.path)
            os.chroot(root)
            proc = ctx.spec.process
            assert proc is not None
            os.chdir(proc.cwd)
            env = dict(e.split("=", 1) for e in proc.env)
            os.execvpe(proc.args[0], list(proc.args), env)
        finally:
            os._exit(127)

__all__ = ["ExecContext", "InitContext", "exec_in", "spawn_init"]
