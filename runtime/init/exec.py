"""exec_in: start an extra process inside a running container (``runc exec``)."""

from __future__ import annotations

import os
import socket

from runtime.errors import InitError, SpecError
from runtime.init import namespaces, process
from runtime.init.channel import Channel
from runtime.init.context import ExecContext
from runtime.init.mounts import host_cgroups
from runtime.init.steps import (
    compile_seccomp,
    drop_privileges,
    fork_stage1,
    install_seccomp,
    reset_signals,
    run_child,
    step,
)
from runtime.seccomp import CompiledFilter


def exec_in(ctx: ExecContext) -> int:
    """Fork a process into every namespace and cgroup of the container init ``ctx.pid`` and
    exec ``ctx.process`` there. Returns its pid (caller's view) once execve has succeeded.

    Like spawn_init, call it from a single-threaded process; it becomes a child subreaper so
    that it can wait for the returned pid.

    Raises:
        SpecError: terminal without console socket.
        InitError: joining, set-up or execve failed; the child has been killed and reaped.
    """
    if ctx.process.terminal and not ctx.console_socket:
        raise SpecError("process.terminal", "a terminal needs a console socket")
    process.check_apparmor(ctx.process.apparmor_profile)
    if not os.path.exists(f"/proc/{ctx.pid}"):
        raise InitError(f"exec in container {ctx.container_id}: init pid {ctx.pid} is gone")
    seccomp = compile_seccomp(ctx.seccomp)
    children = fork_stage1(lambda ch: _stage1(ctx, ch, seccomp))
    with children.supervise(f"exec in container {ctx.container_id}"):
        pid = int(children.channel.expect("pid")["pid"])
        children.target = pid
        children.channel.send("go")  # only now may the child speak: its pid is known to us
        # Reaped after "go": the child sets itself up while stage1 exits (its orphan is
        # re-parented to us, a subreaper, whenever that happens).
        children.stage1_exited(pid)
        msg = children.channel.recv_or_eof()  # EOF: the close-on-exec channel closed in execve
        if msg is not None:
            raise InitError(msg.get("message", f"exec: unexpected {msg['type']!r}"))
    return pid


def _stage1(ctx: ExecContext, ch: Channel, seccomp: CompiledFilter | None) -> None:
    if ctx.process.exec_cpu_affinity is not None:  # runc: "initial" covers the runtime's part
        with step("setting initial CPU affinity"):
            process.set_cpu_affinity(ctx.process.exec_cpu_affinity.initial)
    with step("joining the container's cgroups"):
        _join_cgroups(ctx.pid)
    console = None
    if ctx.process.terminal and ctx.console_socket:
        with step("console socket"):
            console = process.connect_console(ctx.console_socket)
    with step(f"joining the namespaces of pid {ctx.pid}"):
        namespaces.join_process(ctx.pid)
    pid = os.fork()
    if pid == 0:
        run_child(lambda: _exec(ctx, ch, console, seccomp), ch)
    ch.send("pid", pid=pid)


def _join_cgroups(pid: int) -> None:
    for h in host_cgroups(str(pid)):
        with open(os.path.join(h.host_dir, "cgroup.procs"), "w") as f:
            f.write("0")


def _exec(ctx: ExecContext, ch: Channel, console: socket.socket | None,
          seccomp: CompiledFilter | None) -> None:
    proc = ctx.process
    ch.expect("go")
    os.setsid()
    if console is not None:
        with step("setting up the console"):
            process.setup_console(console, proc.console_size)
            console.close()
    else:
        with step("setting up stdio"):
            process.dup_stdio(ctx.stdin, ctx.stdout, ctx.stderr)
    with step("setting rlimits"):
        process.set_rlimits(proc)
    with step("setting oom_score_adj"):
        process.set_oom_score_adj(proc.oom_score_adj)
    with step("setting I/O priority and scheduler"):
        process.set_scheduling(proc)
    env = process.environment(proc)
    with step(f"changing to cwd {proc.cwd}"):
        os.chdir(proc.cwd)
    with step("looking up the program"):
        program = process.find_program(proc.args[0], env)
    if proc.user.umask is not None:
        os.umask(proc.user.umask)
    drop_privileges(proc, seccomp)
    if proc.no_new_privileges:
        install_seccomp(seccomp)
    keep = ch.sock.fileno()  # close-on-exec: its EOF tells exec_in that execve succeeded
    if keep < 3 + ctx.preserve_fds:
        raise InitError(f"exec: fd {keep} of the runtime is among the preserved fds")
    process.close_fds_from(3 + ctx.preserve_fds, keep)
    if proc.exec_cpu_affinity is not None:
        with step("setting CPU affinity"):
            process.set_cpu_affinity(proc.exec_cpu_affinity.final)
    reset_signals()
    with step(f"exec {program}"):
        os.execve(program, list(proc.args), env)
