"""What every exec into one container needs, worked out once per container.

An exec's monitor is a fresh fork of the zygote, and a fork pays for all it computes twice: in
CPU and in copy-on-write faults. Re-reading the container's spec, finding its cgroups in
mountinfo and compiling its seccomp profile cost more than the rest of an exec. ``Runtime.exec``
works them out once per container init (``prepare_exec``; seccomp filters come from the
Runtime's ``FilterCache``), keeps them, and sends them with every request (``to_params``); the
exec spawner takes them back (``from_params``).
"""

from __future__ import annotations

from typing import Any

from runtime.errors import InitError, SpecError
from runtime.init.mounts import host_cgroups
from runtime.records import dataclass
from runtime.seccomp import CompiledFilter, SeccompError
from runtime.seccomp.cache import FilterCache
from runtime.seccomp.cache import from_wire as filter_from_wire
from runtime.seccomp.cache import to_wire as filter_to_wire
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

    def to_params(self) -> dict[str, Any]:
        """JSON-serialisable form, for the monitor request."""
        return {"pid": self.pid, "pid_start": self.pid_start,
                "cgroup_dirs": list(self.cgroup_dirs),
                "seccomp": None if self.seccomp is None else filter_to_wire(self.seccomp)}

    @classmethod
    def from_params(cls, d: dict[str, Any]) -> ExecPrep:
        """Inverse of ``to_params``. Raises SpecError on a malformed one."""
        try:
            seccomp = None if d["seccomp"] is None else filter_from_wire(d["seccomp"])
            return cls(int(d["pid"]), int(d["pid_start"]),
                       tuple(str(p) for p in d["cgroup_dirs"]), seccomp)
        except (KeyError, TypeError, ValueError, SeccompError) as e:
            raise SpecError("prepared", f"malformed exec preparation: {e}") from e


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
