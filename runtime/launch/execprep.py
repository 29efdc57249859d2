"""What every exec into one container needs, worked out once per container.

An exec's monitor is a fresh fork of the zygote, and a fork pays for all it computes twice: in
CPU and in copy-on-write faults. Re-reading the container's spec, finding its cgroups in
mountinfo and compiling its seccomp profile cost more than the rest of an exec. ``Runtime.exec``
works them out once per container init (``prepare_exec``; seccomp filters come from the
Runtime's ``FilterCache``), keeps them, and sends them with every request
(``runtime.launch.params.ExecParams``).
"""

from __future__ import annotations

from runtime.errors import InitError
from runtime.init.mounts import host_cgroups
from runtime.records import dataclass
from runtime.seccomp import CompiledFilter
from runtime.seccomp.cache import FilterCache
from runtime.spec.model import Spec


@dataclass(frozen=True)
class ExecPrep:
    """For execs into the init ``pid`` (started at ``pid_start``, in clock ticks: a recycled
    pid is another process): the ``cgroup.procs`` directories of its cgroups (host paths) and
    its compiled seccomp filter (None: unconfined)."""

    pid: int
    pid_start: int
    cgroup_dirs: tuple[str, ...]
    seccomp: CompiledFilter | None = None


def prepare_exec(spec: Spec, pid: int, pid_start: int, filters: FilterCache) -> ExecPrep:
    """Work out what execs into the container of ``spec``, whose init is ``pid``, need
    (the seccomp filter from ``filters``, which compiles each profile once).

    Raises:
        SpecError / SeccompError: linux.seccomp is invalid or too large.
        InitError: the init is gone.
    """
    seccomp = filters.get(spec.linux.seccomp) if spec.linux.seccomp is not None else None
    try:
        dirs = tuple(h.host_dir for h in host_cgroups(str(pid)))
    except FileNotFoundError as e:
        raise InitError(f"exec: the container's init (pid {pid}) is gone") from e
    return ExecPrep(pid, pid_start, dirs, seccomp)
