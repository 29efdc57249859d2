"""exec_in: start an extra process inside a running container (``runc exec``).

One fork. The caller enters the container's pid namespace for its children only (setns with
CLONE_NEWPID moves ``pid_for_children``, never the caller itself), forks, and goes back to
its own; the child joins the other namespaces itself and sets itself up. runc forks twice,
through a stage that joins the namespaces first; here each fork of the zygote's heap costs
copy-on-write faults, so the stage is left out.

Meanwhile the caller places the child in the container's cgroups (a write to each
hierarchy's ``cgroup.procs``, slow on cgroup v1), then tells it "placed": the
child waits for that before it drops its privileges, so nothing of the container's runs
outside its cgroups, and the two halves overlap on different CPUs.
"""

from __future__ import annotations

import os
import select
import socket
from collections.abc import Callable
from typing import Any, NoReturn

from runtime.errors import InitError, SpecError
from runtime.init import namespaces, process
from runtime.init.channel import Channel, pair
from runtime.init.context import ExecContext
from runtime.init.mounts import host_cgroups
from runtime.init.steps import (
    compile_seccomp,
    drop_privileges,
    install_seccomp,
    kill_and_reap,
    reset_signals,
    run_child,
    step,
)
from runtime.linux import libc
from runtime.seccomp import CompiledFilter


def exec_in(ctx: ExecContext) -> int:
    """Fork a process into every namespace and cgroup of the container init ``ctx.pid`` and
    exec ``ctx.process`` there. Returns its pid (caller's view) once execve has succeeded; the
    process is the caller's child.

    Call it from a single-threaded process.

    Raises:
        SpecError: terminal without console socket; an invalid seccomp profile.
        InitError: the init is gone; joining, set-up or execve failed (the child has been
            killed and reaped).
    """
    if ctx.process.terminal and not ctx.console_socket:
        raise SpecError("process.terminal", "a terminal needs a console socket")
    process.check_apparmor(ctx.process.apparmor_profile)
    what = f"exec in container {ctx.container_id}"
    seccomp = ctx.compiled_seccomp or compile_seccomp(ctx.seccomp)
    joins = _open_namespaces(ctx.pid, what)
    try:
        cgroups = ctx.cgroup_dirs
        if cgroups is None:
            with step(f"{what}: reading the cgroups of pid {ctx.pid}"):
                cgroups = tuple(h.host_dir for h in host_cgroups(str(ctx.pid)))
        pid_ns = dict(joins).get("pid")
        others = tuple((t, fd) for t, fd in joins if t != "pid")
        ours, theirs = pair()
        try:
            pid = _fork_into(pid_ns, lambda: run_child(
                lambda: _child(ctx, theirs, others, seccomp), theirs))
        finally:
            theirs.close()
    finally:
        for _, fd in joins:
            os.close(fd)
    try:
        msg = _place_and_wait(pid, cgroups, ours)
    except BaseException as e:
        kill_and_reap(pid)
        if isinstance(e, OSError | InitError):
            raise InitError(f"{what}: {e}") from e
        raise
    finally:
        ours.close()
    if msg is not None:
        kill_and_reap(pid)
        raise InitError(f"{what}: " + (msg.get("message") or f"unexpected {msg.get('type')!r}"))
    return pid


def _place_and_wait(pid: int, cgroups: tuple[str, ...], ch: Channel) -> dict[str, Any] | None:
    """Move the child into each cgroup directory, tell it so, and wait until it has exec'd
    (None) or has failed (its error message). Raises InitError naming a cgroup it could not
    join, unless the child had failed first (its message is the better report)."""
    try:
        for d in cgroups:
            with step(f"joining the container's cgroup {d}"), \
                    open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(pid))
        ch.send("placed")
    except (OSError, InitError):
        msg = ch.recv_or_eof() if _readable(ch) else None  # not readable: alive, waiting
        if msg is None:
            raise
        return msg
    return ch.recv_or_eof()  # EOF: the close-on-exec channel closed in execve


def _readable(ch: Channel) -> bool:
    return bool(select.select([ch.sock], [], [], 0)[0])


def _open_namespaces(pid: int, what: str) -> tuple[tuple[str, int], ...]:
    """Open each namespace of ``pid`` that differs from ours, in join order.

    A namespace type that we lack too is one this kernel does not have; one that only the
    init lacks means the init is gone (joining nothing would run the process on the host).
    """
    fds: list[tuple[str, int]] = []
    try:
        for ns_type in namespaces.JOIN_ORDER:
            name = namespaces.PROC_NAMES[ns_type]
            try:
                mine = os.stat(f"/proc/self/ns/{name}")
            except FileNotFoundError:
                continue
            fd = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
                os.close(fd)
                continue
            fds.append((ns_type, fd))
    except OSError as e:
        for _, fd in fds:
            os.close(fd)
        raise InitError(f"{what}: init pid {pid} is gone ({e.strerror})") from e
    return tuple(fds)


def _fork_into(pid_ns: int | None, child: Callable[[], NoReturn]) -> int:
    """Fork ``child`` into the pid namespace open at ``pid_ns`` (None: ours)."""
    if pid_ns is None:
        pid = os.fork()
        if pid == 0:
            child()
        return pid
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with step("joining the container's pid namespace"):
            libc.setns(pid_ns, libc.CLONE_NEWPID)
        try:
            pid = os.fork()
            if pid == 0:
                child()
        finally:
            # Our own (active) pid namespace may always be re-entered: later forks of ours
            # must not land in the container.
            libc.setns(own, libc.CLONE_NEWPID)
    finally:
        os.close(own)
    return pid


def _child(ctx: ExecContext, ch: Channel, joins: tuple[tuple[str, int], ...],
           seccomp: CompiledFilter | None) -> None:
    if ctx.process.exec_cpu_affinity is not None:  # runc: "initial" covers the runtime's part
        with step("setting initial CPU affinity"):
            process.set_cpu_affinity(ctx.process.exec_cpu_affinity.initial)
    console = None
    if ctx.process.terminal and ctx.console_socket:
        with step("console socket"):
            console = process.connect_console(ctx.console_socket)
    with step(f"joining the namespaces of pid {ctx.pid}"):
        namespaces.join_all(joins)
    _exec(ctx, ch, console, seccomp)


def _exec(ctx: ExecContext, ch: Channel, console: socket.socket | None,
          seccomp: CompiledFilter | None) -> None:
    proc = ctx.process
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
    ch.expect("placed")  # in the container's cgroups before anything of its own runs
    drop_privileges(proc, seccomp)
    if proc.no_new_privileges:
        install_seccomp(seccomp)
    # close-on-exec: its EOF tells exec_in that execve succeeded
    ch.move_above(3 + len(ctx.preserve_fds))
    with step("passing the preserved fds"):
        process.pass_fds(ctx.preserve_fds, ch.sock.fileno())
    if proc.exec_cpu_affinity is not None:
        with step("setting CPU affinity"):
            process.set_cpu_affinity(proc.exec_cpu_affinity.final)
    reset_signals()
    with step(f"exec {program}"):
        os.execve(program, list(proc.args), env)

