"""What a monitor runs: the container init (``InitParams``) or a process exec'd into a running
container (``ExecParams``), from the records ``runtime.launch.params`` declares.

The heavy lifting is ``runtime.init`` (namespaces, mounts, process set-up) and
``runtime.cgroups``; this module only ties them to the monitor's ``ChildSpawner`` seam.
"""

from __future__ import annotations

import os

from runtime import hooks
from runtime.cgroup_seam import mount_hierarchies, open_cgroups
from runtime.cgroups import Resources
from runtime.cgroups.files import read_keyed
from runtime.cgroups.resources import with_allowed_devices
from runtime.errors import OCIRuntimeError, SpecError
from runtime.init import ExecContext, InitContext, exec_in, spawn_init
from runtime.init.mounts import CgroupHierarchy
from runtime.launch.params import ExecParams, InitParams, SpawnerParams
from runtime.monitor.leftovers import group_dir
from runtime.monitor.options import ChildSpawner
from runtime.monitor.stdio import ChildStdio


class InitSpawner:
    """Creates the container: init via ``spawn_init``, cgroup, createRuntime/prestart hooks."""

    def __init__(self, params: InitParams) -> None:
        self.params = params
        self.spec = params.spec
        # the Runtime's view of the host (the Runtime has made the cgroups)
        self.cgroups = open_cgroups(self.spec, params.id, params.cgroups)
        self._state: dict = {}

    def spawn(self, stdio: ChildStdio) -> int:
        p = self.params
        state = dict(p.state)
        ctx = InitContext(spec=self.spec, bundle=p.bundle, container_id=p.id,
                          stdin=stdio.stdin, stdout=stdio.stdout, stderr=stdio.stderr,
                          console_socket=stdio.console_socket, exec_fifo=p.exec_fifo,
                          preserve_fds=stdio.preserved, state=state, no_pivot=p.no_pivot,
                          compiled_seccomp=p.seccomp)
        self._state = state
        # in place: the monitor calls this in its throwaway creator child (_spawn_in_child)
        return spawn_init(ctx, self, in_place=True)

    # InitHost: the init mounts while we place it and run the runtime-side hooks
    # (runtime.md: createRuntime after the environment is created, before pivot_root).
    def prepare(self) -> tuple[CgroupHierarchy, ...]:
        # Limits before the process joins (nothing here waits for the slow migration lock):
        # it never runs in its cgroup unlimited.
        self.cgroups.set(with_allowed_devices(Resources.from_oci(self.spec.linux.resources)))
        return mount_hierarchies(self.cgroups)

    def place(self, pid: int) -> None:
        self.cgroups.apply(pid)
        state = {**self._state, "pid": pid, "status": "creating"}
        hooks.run_hooks(self.spec.hooks.prestart, state, "prestart")
        hooks.run_hooks(self.spec.hooks.create_runtime, state, "createRuntime")

    def oom_kill_count(self) -> int:
        try:
            return self.cgroups.oom_kill_count()
        except (OSError, OCIRuntimeError):  # no cgroup yet (before create): nothing counted
            return 0

    def oom_counter(self) -> tuple[str, str] | None:
        return self.cgroups.oom_counter()

    def leftover_group(self) -> str | None:
        pid_ns = self.spec.linux.namespace("pid")
        if pid_ns is not None and not pid_ns.path:
            return None  # a PID namespace of its own: the kernel ends it with its init
        return group_dir(self.cgroups.dirs())


class ExecSpawner:
    """Starts an extra process inside a running container (its namespaces and cgroup), from
    what the caller parsed and worked out once per container (so this fork reads no spec)."""

    def __init__(self, params: ExecParams) -> None:
        self.params = params
        self.process = params.process
        self.prep = params.prepared
        if self.prep.pid != params.pid:
            raise SpecError("prepared", f"prepared for pid {self.prep.pid}, not {params.pid}")

    def spawn(self, stdio: ChildStdio) -> int:
        ctx = ExecContext(pid=self.prep.pid, process=self.process,
                          container_id=self.params.id, compiled_seccomp=self.prep.seccomp,
                          stdin=stdio.stdin, stdout=stdio.stdout, stderr=stdio.stderr,
                          console_socket=stdio.console_socket, preserve_fds=stdio.preserved,
                          cgroup_dirs=self.prep.cgroup_dirs)
        return exec_in(ctx)

    def oom_kill_count(self) -> int:
        # Found here, not in __init__: a brief exec (ExecSync) never counts OOM kills.
        counter = self.oom_counter()
        try:
            return read_keyed(*counter).get("oom_kill", 0) if counter else 0
        except (OSError, OCIRuntimeError):  # the cgroup is gone: nothing counted
            return 0

    def oom_counter(self) -> tuple[str, str] | None:
        """The container's memory cgroup among the init's (v1: ``memory.oom_control``; v2:
        ``memory.events``); None without one."""
        for name in ("memory.oom_control", "memory.events"):
            for d in self.prep.cgroup_dirs:
                if os.path.exists(os.path.join(d, name)):
                    return d, name
        return None

    def leftover_group(self) -> str | None:
        return None  # an exec's end is not the container's


def make_spawner(params: SpawnerParams) -> ChildSpawner:
    """The spawner for ``params``. Raises OCIRuntimeError (SpecError...) or ValueError."""
    if isinstance(params, InitParams):
        return InitSpawner(params)
    if isinstance(params, ExecParams):
        return ExecSpawner(params)
    raise ValueError(f"unknown spawner parameters {type(params).__name__}")

