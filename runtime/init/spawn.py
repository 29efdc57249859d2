"""spawn_init: fork the container init and set it up up to the point where it waits for start.

Process layout (like runc's nsexec stages): the caller forks *stage1*, which joins namespaces
given by path, creates the user namespace (the caller writes its id maps), unshares the other
new namespaces and forks the *init* — the extra fork puts it inside the new pid namespace.
Stage1 reports the init's pid and exits; the init is re-parented to the caller, which spawn_init
makes a child subreaper. Meanwhile the caller's ``InitHost`` has made the init's cgroups
(``prepare``). The init is told to "go" and builds its root filesystem while the caller joins
it to those cgroups and runs the prestart/createRuntime hooks (``place``: cgroup migration is
slow on v1, so the two overlap). The init waits for "placed" before it needs to be in its
cgroups (createContainer hooks, the cgroup namespace) and before it reports "ready", then
blocks on the exec FIFO.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Protocol

from runtime import hooks
from runtime.errors import InitError, SpecError
from runtime.init import idmap, namespaces, process, rootfs
from runtime.init.channel import Channel, error_of, pair
from runtime.init.context import InitContext
from runtime.init.mounts import CgroupHierarchy, host_cgroups
from runtime.init.steps import (
    Children,
    compile_seccomp,
    drop_privileges,
    fork_stage1,
    install_seccomp,
    reset_signals,
    run_child,
    step,
)
from runtime.launch.procname import set_comm
from runtime.linux import libc, securejoin
from runtime.records import replace
from runtime.seccomp import CompiledFilter
from runtime.spec.model import Spec


class InitHost(Protocol):
    """What the caller of spawn_init does for the init, in the caller's process."""

    def prepare(self) -> tuple[CgroupHierarchy, ...] | None:
        """Create the init's cgroups and set their resources (while stage1 makes the
        namespaces and forks the init) and return their directories for the container's
        cgroup mount, or None (the init then reads its own once placed)."""

    def place(self, pid: int) -> None:
        """Join the init to its cgroups, run the prestart and createRuntime hooks. Runs while
        the init builds its root filesystem."""


def spawn_init(ctx: InitContext, host: InitHost, in_place: bool = False) -> int:
    """Create the container init; return its pid (as seen by the caller) once it is waiting
    for start (or, without exec_fifo, about to exec).

    Must be called from a single-threaded process; it becomes a child subreaper so that it can
    wait for the init. ``host`` is called as the module docstring says; an exception from it
    aborts the creation. ``in_place``: the caller is a throwaway process that exits once this
    returns, so it may do stage1's work itself and enter the container's new namespaces (one
    fork less) when nothing else needs the host's: no user namespace, no mount namespace
    joined by path, no prestart/createRuntime hooks.

    Raises:
        SpecError: the spec cannot be run as given (no process, terminal without socket...).
        InitError: any failure of the set-up; the init has been killed and reaped by then.
    """
    _validate(ctx.spec, ctx)
    root = os.path.realpath(os.path.join(ctx.bundle, ctx.spec.root.path))
    if not os.path.isdir(root):
        raise SpecError("root.path", f"{root} is not a directory")
    seccomp = ctx.compiled_seccomp or compile_seccomp(ctx.spec.linux.seccomp)
    if in_place and _in_place_possible(ctx.spec):
        return _spawn_in_place(ctx, host, root, seccomp)
    children = fork_stage1(lambda ch: _stage1(ctx, ch, root, seccomp))
    parent = children.channel
    with children.supervise(f"creating container {ctx.container_id}"):
        cgroups = host.prepare()
        msg = parent.recv()
        if msg["type"] == "userns":
            with step("writing user namespace id maps"):
                namespaces.write_id_maps(children.stage1, ctx.spec.linux)
            parent.send("mapped")
            msg = parent.recv()
        if msg["type"] == "error":
            raise error_of(msg)
        children.target = int(msg["pid"])
        _see_through(children, host, cgroups)
    return children.target


def _in_place_possible(spec: Spec) -> bool:
    mount = spec.linux.namespace("mount")
    return (spec.linux.namespace("user") is None and mount is not None and not mount.path
            and not spec.hooks.prestart and not spec.hooks.create_runtime)


def _spawn_in_place(ctx: InitContext, host: InitHost, root: str,
                    seccomp: CompiledFilter | None) -> int:
    """spawn_init with the caller as its own stage1 (see ``in_place``)."""
    libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
    parent, child = pair()
    children = Children(0, parent)
    with children.supervise(f"creating container {ctx.container_id}"):
        cgroups = host.prepare()  # in the host's namespaces, before we leave them
        # All but the mount namespace, which the init makes: we stay in the host's, where
        # the paths of ``host.place`` still lead to the host's files when the init has
        # pivoted its root (it does not wait for placement to do so).
        plan, console, fifo = _namespaces(ctx, child, root, but=libc.CLONE_NEWNS)
        pid = os.fork()
        if pid == 0:
            parent.close()
            run_child(lambda: _init(ctx, child, root, plan, seccomp, console, fifo,
                                    unshare=libc.CLONE_NEWNS), child)
        child.close()
        children.target = pid
        _see_through(children, host, cgroups)
    return pid


def _see_through(children: Children, host: InitHost,
                 cgroups: tuple[CgroupHierarchy, ...] | None) -> None:
    """From the init's pid to its "ready": go, placement overlapping its mounts, ready."""
    parent = children.channel
    pid = children.target
    assert pid is not None
    parent.send("go", pid=pid,
                cgroups=None if cgroups is None else [[h.name, h.host_dir] for h in cgroups])
    host.place(pid)
    try:
        parent.send("placed")
    except OSError:
        pass  # the init failed meanwhile: its error message is read next
    children.reap_stage1()  # not before: its exit overlaps the cgroup work
    parent.expect("ready")


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
    idmap.check(spec)


def _stage1(ctx: InitContext, ch: Channel, root: str,
            seccomp: CompiledFilter | None) -> None:
    """Namespaces (join, then new user ns + maps, then the other new ones) and the init fork."""
    plan, console, fifo = _namespaces(ctx, ch, root)
    pid = os.fork()
    if pid == 0:
        run_child(lambda: _init(ctx, ch, root, plan, seccomp, console, fifo), ch)
    ch.send("pid", pid=pid)


def _namespaces(ctx: InitContext, ch: Channel, root: str, but: int = 0
                ) -> tuple[namespaces.NsPlan, socket.socket | None, int | None]:
    """Stage1's work up to the init's fork: the namespace plan, console socket and exec fifo
    opened in the host's namespaces, then namespaces joined and created (all new ones but
    those in the ``but`` flags)."""
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
    with step("idmapped mounts"):
        plan = replace(plan, idmapped=idmap.open_idmapped(spec, ctx.bundle, plan.user_fd))
    if plan.new_user and not any(t == "mount" for t, _ in plan.join):
        with step(f"copying the rootfs mount {root}"):
            plan = replace(plan, rootfs_copy=rootfs.copy_tree(root))
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
    flags = (plan.unshare_flags | (libc.CLONE_NEWPID if plan.new_pid else 0)) & ~but
    with step("creating namespaces"):
        if flags:
            libc.unshare(flags)
    with step("writing time namespace offsets"):
        namespaces.write_time_offsets(spec.linux.time_offsets)
    return plan, console, fifo


def _become_ns_root() -> None:
    """Take uid/gid 0 of the user namespace just entered (needs 0 to be mapped), as runc."""
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def _init(ctx: InitContext, ch: Channel, root: str, plan: namespaces.NsPlan,
          seccomp: CompiledFilter | None, console: socket.socket | None,
          fifo: int | None, unshare: int = 0) -> None:
    """The container init, from "go" to "ready", then the wait for start and the exec.
    ``unshare``: the flags of new namespaces its creator left to it (the mount namespace)."""
    proc = ctx.spec.process
    assert proc is not None
    set_comm("crid-init")  # what a created container's process shows until start
    if unshare:
        with step("creating namespaces"):
            libc.unshare(unshare & plan.unshare_flags)
    go = ch.expect("go")
    state = {**ctx.state, "pid": int(go["pid"]), "status": "creating"}
    _enter(ctx)
    placement = _Placement(ch, plan, go.get("cgroups"))
    _build_rootfs(ctx, root, placement, state, plan)
    _prepare_process(ctx, console)
    env = process.environment(proc)
    with step("looking up the program"):
        program = process.find_program(proc.args[0], env)
    if fifo is not None and not os.path.exists(f"/proc/self/fd/{fifo}"):
        raise InitError("waiting for start needs /proc mounted in the container (the exec "
                        "fifo is reopened through /proc/self/fd)")
    if plan.new_cgroup:  # made once placed, with CAP_SYS_ADMIN: before dropping it
        placement.wait()
    drop_privileges(proc, seccomp)
    placement.wait()  # created means in its cgroups
    ch.send("ready")
    ch.close()
    _wait_and_exec(ctx, fifo, state, program, env, seccomp)


def _enter(ctx: InitContext) -> None:
    """Session, stdio, OOM score."""
    proc = ctx.spec.process
    assert proc is not None
    os.setsid()
    if not proc.terminal:
        with step("setting up stdio"):
            process.dup_stdio(ctx.stdin, ctx.stdout, ctx.stderr)
    with step("setting oom_score_adj"):
        process.set_oom_score_adj(proc.oom_score_adj)


class _Placement:
    """The init's side of the caller's ``InitHost.place``, which runs while the init mounts."""

    def __init__(self, ch: Channel, plan: namespaces.NsPlan, known: list | None) -> None:
        self._ch = ch
        self._plan = plan
        self._cgroups = None if known is None else tuple(CgroupHierarchy(n, d) for n, d in known)
        self._placed = False

    def cgroups(self) -> tuple[CgroupHierarchy, ...]:
        """Our cgroups as seen from the host (for the cgroup mount)."""
        if self._cgroups is None:
            self.wait(read_cgroups=True)
        assert self._cgroups is not None
        return self._cgroups

    def wait(self, read_cgroups: bool = False) -> None:
        """Until the caller has placed us; then the cgroup namespace, rooted at our cgroup.
        ``read_cgroups``: read our cgroups first (in the host's view: before the namespace,
        and before pivot_root)."""
        if self._placed:
            return
        self._ch.expect("placed")
        self._placed = True
        if read_cgroups and self._cgroups is None:
            with step("reading cgroups"):
                self._cgroups = host_cgroups()
        if self._plan.new_cgroup:
            with step("creating cgroup namespace"):
                libc.unshare(libc.CLONE_NEWCGROUP)


def _build_rootfs(ctx: InitContext, root: str, placement: _Placement,
                  state: dict[str, Any], plan: namespaces.NsPlan) -> None:
    """Mounts, devices, createContainer hooks (before pivot_root, runtime.md), pivot_root,
    then what needs the container's /proc: sysctls, masks, read-only paths; hostname.

    Only the hooks wait for our placement in our cgroups (they may look at them); the rest
    runs while the caller places us (on cgroup v1 that waits for an RCU grace period, as
    long as all of this). Device nodes made before the devices cgroup applies are checked
    by it again when they are opened."""
    spec = ctx.spec
    assert spec.process is not None
    os.umask(0)
    with step(f"preparing rootfs {root}"):
        rootfs.prepare(root, spec.linux.rootfs_propagation, plan.rootfs_copy)
    with step("mounts"):
        rootfs.mount_all(spec, root, ctx.bundle, placement.cgroups, dict(plan.idmapped))
    if spec.hooks.create_container:
        placement.wait()
    with step("devices"):
        rootfs.create_devices(spec, root)
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
    with step("passing the preserved fds"):
        process.pass_fds(ctx.preserve_fds)
    reset_signals()
    os.execve(program, list(proc.args), env)
