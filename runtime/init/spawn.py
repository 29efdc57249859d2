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
from collections.abc import Callable

from runtime import hooks, libc
from runtime.errors import InitError, SpecError
from runtime.init import namespaces, process, rootfs
from runtime.init.channel import Channel
from runtime.init.context import InitContext
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


def _stage1(ctx: InitContext, ch: Channel, root: str,
            seccomp: CompiledFilter | None) -> None:
    """Namespaces (join, then new user ns + maps, then the other new ones) and the init fork."""
    spec = ctx.spec
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
    if plan.new_user:
        with step("creating user namespace"):
            libc.unshare(libc.CLONE_NEWUSER)
        ch.send("userns")
        ch.expect("mapped")
        with step("becoming root in the user namespace"):
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
    flags = plan.unshare_flags | (libc.CLONE_NEWPID if plan.new_pid else 0)
    with step("creating namespaces"):
        if flags:
            libc.unshare(flags)
    pid = os.fork()
    if pid == 0:
        run_child(lambda: _init(ctx, ch, root, plan, seccomp, console, fifo), ch)
    ch.send("pid", pid=pid)


def _init(ctx: InitContext, ch: Channel, root: str, plan: namespaces.NsPlan,
          seccomp: CompiledFilter | None, console,  # type: ignore[no-untyped-def]
          fifo: int | None) -> None:
    spec = ctx.spec
    proc = spec.process
    assert proc is not None
    host_pid = int(ch.expect("go")["pid"])
    state = {**ctx.state, "pid": host_pid, "status": "creating"}
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
    os.umask(0)
    with step(f"preparing rootfs {root}"):
        rootfs.prepare(root, spec.linux.rootfs_propagation)
    with step("mounts"):
        rootfs.mount_all(spec, root, ctx.bundle, cgroups)
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
    _prepare_process(ctx, console)
    env = process.environment(proc)
    with step("looking up the program"):
        program = process.find_program(proc.args[0], env)
    drop_privileges(proc, seccomp)
    ch.send("ready")
    ch.close()
    _wait_and_exec(ctx, fifo, state, program, env, seccomp)


def _prepare_process(ctx: InitContext, console) -> None:  # type: ignore[no-untyped-def]
    proc = ctx.spec.process
    assert proc is not None
    with step("setting personality"):
        process.set_personality(ctx.spec.linux.personality)
    with step("setting rlimits"):
        process.set_rlimits(proc)
    if console is not None:
        with step("setting up the console"):
            process.setup_console(console, proc.console_size)
            console.close()
    with step(f"changing to cwd {proc.cwd}"):
        os.makedirs(proc.cwd, exist_ok=True)
        os.chdir(proc.cwd)
    os.umask(proc.user.umask if proc.user.umask is not None else 0o022)


def _wait_and_exec(ctx: InitContext, fifo: int | None, state: dict, program: str,
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
    process.close_fds_from(3 + ctx.preserve_fds)
    reset_signals()
    os.execve(program, list(proc.args), env)
