"""spawn_init: fork the container init and set it up up to the point where it waits for start.

Process layout (like runc's nsexec stages): the caller forks *stage1*, which joins namespaces
given by path, creates the user namespace (the caller writes its id maps), unshares the other
new namespaces and forks the *init* — the extra fork puts it inside the new pid namespace.
Stage1 reports the init's pid and exits; the init is re-parented to the caller, which spawn_init
makes a child subreaper. The caller's ``on_created(pid)`` runs (cgroup placement, createRuntime
hooks) before the init is told to go on; the init then builds the rootfs, prepares the process,
reports "ready" and blocks on the exec FIFO.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

from runtime import hooks, libc, securejoin
from runtime.errors import InitError, SpecError
from runtime.init import namespaces, process, rootfs
from runtime.init.channel import Channel
from runtime.init.context import InitContext
from runtime.init.mounts import CgroupHierarchy, host_cgroups
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
from runtime.spec.model import Spec


def spawn_init(ctx: InitContext, on_created: Callable[[int], None]) -> int:
    """Create the container init; return its pid (as seen by the caller) once it is waiting
    for start (or, without exec_fifo, about to exec).

    Must be called from a single-threaded process; it becomes a child subreaper so that it can
    wait for the init. ``on_created(pid)`` is called in the caller after the init exists and
    before any of its set-up; an exception from it aborts the creation.

    Raises:
        SpecError: the spec cannot be run as given (no process, terminal without socket...).
        InitError: any failure of the set-up; the init has been killed and reaped by then.
    """
    _validate(ctx.spec, ctx)
    root = os.path.realpath(os.path.join(ctx.bundle, ctx.spec.root.path))
    if not os.path.isdir(root):
        raise SpecError("root.path", f"{root} is not a directory")
    seccomp = compile_seccomp(ctx.spec.linux.seccomp)
    children = fork_stage1(lambda ch: _stage1(ctx, ch, root, seccomp))
    parent = children.channel
    with children.supervise(f"creating container {ctx.container_id}"):
        msg = parent.recv()
        if msg["type"] == "userns":
            with step("writing user namespace id maps"):
                namespaces.write_id_maps(children.stage1, ctx.spec.linux)
            parent.send("mapped")
            msg = parent.recv()
        if msg["type"] == "error":
            raise InitError(msg["message"])
        init_pid = int(msg["pid"])
        children.stage1_exited(init_pid)
        on_created(init_pid)
        parent.send("go", pid=init_pid)
        parent.expect("ready")
    return init_pid


def _validate(spec: Spec, ctx: InitContext) -> None:
    if spec.process is None:
        raise SpecError("process", "required to create a container")
    if spec.process.terminal and not ctx.console_socket:
        raise SpecError("process.terminal", "a terminal needs a console socket")
    process.check_apparmor(spec.process.apparmor_profile)
    ns = {n.type for n in spec.linux.namespaces}
    if "mount" not in ns:
        raise SpecError("linux.namespaces", "a mount namespace is required")
    if spec.hostname and "uts" not in ns:
        raise SpecError("hostname", "setting the hostname needs a private UTS namespace")
    if spec.domainname and "uts" not in ns:
        raise SpecError("domainname", "setting the domainname needs a private UTS namespace")
    for i, m in enumerate(spec.mounts):
        if m.uid_mappings or m.gid_mappings or {"idmap", "ridmap"} & set(m.options):
            raise SpecError(f"mounts[{i}]", "idmapped mounts are not supported")


def _stage1(ctx: InitContext, ch: Channel, root: str,
            seccomp: CompiledFilter | None) -> None:
    """Namespaces (join, then new user ns + maps, then the other new ones) and the init fork."""
    spec = ctx.spec
    if spec.process and spec.process.exec_cpu_affinity is not None:
        with step("setting initial CPU affinity"):
            process.set_cpu_affinity(spec.process.exec_cpu_affinity.initial)
    with step("opening namespace paths"):
        plan = namespaces.plan(spec.linux)
    console = None
    if spec.process and spec.process.terminal and ctx.console_socket:
        with step("console socket"):
            console = process.connect_console(ctx.console_socket)
    fifo = None
    if ctx.exec_fifo:
        with step(f"opening exec fifo {ctx.exec_fifo}"):
            fifo = os.open(ctx.exec_fifo, os.O_PATH | os.O_CLOEXEC)
    with step("joining namespaces"):
        namespaces.join_all(plan.join)
    if any(t == "user" for t, _ in plan.join):
        with step("becoming root in the joined user namespace"):
            _become_ns_root()
    if plan.new_user:
        with step("creating user namespace"):
            libc.unshare(libc.CLONE_NEWUSER)
        ch.send("userns")
        ch.expect("mapped")
        with step("becoming root in the user namespace"):
            _become_ns_root()
    flags = plan.unshare_flags | (libc.CLONE_NEWPID if plan.new_pid else 0)
    with step("creating namespaces"):
        if flags:
            libc.unshare(flags)
    with step("writing time namespace offsets"):
        namespaces.write_time_offsets(spec.linux.time_offsets)
    pid = os.fork()
    if pid == 0:
        run_child(lambda: _init(ctx, ch, root, plan, seccomp, console, fifo), ch)
    ch.send("pid", pid=pid)


def _become_ns_root() -> None:
    """Take uid/gid 0 of the user namespace just entered (needs 0 to be mapped), as runc."""
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def _init(ctx: InitContext, ch: Channel, root: str, plan: namespaces.NsPlan,
          seccomp: CompiledFilter | None, console: socket.socket | None,
          fifo: int | None) -> None:
    """The container init, from "go" to "ready", then the wait for start and the exec."""
    proc = ctx.spec.process
    assert proc is not None
    host_pid = int(ch.expect("go")["pid"])
    state = {**ctx.state, "pid": host_pid, "status": "creating"}
    cgroups = _enter(ctx, plan)
    _build_rootfs(ctx, root, cgroups, state)
    _prepare_process(ctx, console)
    env = process.environment(proc)
    with step("looking up the program"):
        program = process.find_program(proc.args[0], env)
    if fifo is not None and not os.path.exists(f"/proc/self/fd/{fifo}"):
        raise InitError("waiting for start needs /proc mounted in the container (the exec "
                        "fifo is reopened through /proc/self/fd)")
    drop_privileges(proc, seccomp)
    ch.send("ready")
    ch.close()
    _wait_and_exec(ctx, fifo, state, program, env, seccomp)


def _enter(ctx: InitContext, plan: namespaces.NsPlan) -> tuple[CgroupHierarchy, ...]:
    """Session, stdio, OOM score; the cgroup namespace once the caller has placed us in our
    cgroup (on_created ran before "go"). Returns our cgroups as seen from the host."""
    proc = ctx.spec.process
    assert proc is not None
    os.setsid()
    if not proc.terminal:
        with step("setting up stdio"):
            process.dup_stdio(ctx.stdin, ctx.stdout, ctx.stderr)
    with step("setting oom_score_adj"):
        process.set_oom_score_adj(proc.oom_score_adj)
    with step("reading cgroups"):
        cgroups = host_cgroups()
    if plan.new_cgroup:
        with step("creating cgroup namespace"):
            libc.unshare(libc.CLONE_NEWCGROUP)
    return cgroups


def _build_rootfs(ctx: InitContext, root: str, cgroups: tuple[CgroupHierarchy, ...],
                  state: dict[str, Any]) -> None:
    """Mounts, devices, createContainer hooks (before pivot_root, runtime.md), pivot_root,
    then what needs the container's /proc: sysctls, masks, read-only paths; hostname."""
    spec = ctx.spec
    assert spec.process is not None
    os.umask(0)
    with step(f"preparing rootfs {root}"):
        rootfs.prepare(root, spec.linux.rootfs_propagation)
    with step("mounts"):
        rootfs.mount_all(spec, root, ctx.bundle, cgroups)
    with step(f"creating cwd {spec.process.cwd}"):
        securejoin.mkdir_all(root, spec.process.cwd)
    with step("createContainer hooks"):
        hooks.run_hooks(spec.hooks.create_container, state, "createContainer")
    with step("pivot_root"):
        rootfs.pivot(root, ctx.no_pivot)
    with step("finishing rootfs"):
        rootfs.finish(spec)
    with step("setting hostname"):
        if spec.hostname:
            libc.sethostname(spec.hostname)
        if spec.domainname:
            libc.setdomainname(spec.domainname)


def _prepare_process(ctx: InitContext, console: socket.socket | None) -> None:
    proc = ctx.spec.process
    assert proc is not None
    with step("setting personality"):
        process.set_personality(ctx.spec.linux.personality)
    with step("setting rlimits"):
        process.set_rlimits(proc)
    with step("setting I/O priority and scheduler"):
        process.set_scheduling(proc)
    if console is not None:
        with step("setting up the console"):
            process.setup_console(console, proc.console_size)
            console.close()
    with step(f"changing to cwd {proc.cwd}"):
        os.chdir(proc.cwd)
    os.umask(proc.user.umask if proc.user.umask is not None else 0o022)


def _wait_and_exec(ctx: InitContext, fifo: int | None, state: dict[str, Any], program: str,
                   env: dict[str, str], seccomp: CompiledFilter | None) -> None:
    """After "ready": errors can only go to the container's stderr now."""
    proc = ctx.spec.process
    assert proc is not None
    if fifo is not None:
        with step("waiting on exec fifo"):
            fd = os.open(f"/proc/self/fd/{fifo}", os.O_WRONLY | os.O_CLOEXEC)
            os.write(fd, b"0")
            os.close(fd)
            os.close(fifo)
    with step("startContainer hooks"):
        hooks.run_hooks(ctx.spec.hooks.start_container, {**state, "status": "created"},
                        "startContainer")
    if proc.no_new_privileges:
        install_seccomp(seccomp)
    if proc.exec_cpu_affinity is not None:
        with step("setting CPU affinity"):
            process.set_cpu_affinity(proc.exec_cpu_affinity.final)
    process.close_fds_from(3 + ctx.preserve_fds)
    reset_signals()
    os.execve(program, list(proc.args), env)
