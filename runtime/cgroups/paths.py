"""Where cgroups live: ``cgroupsPath`` parsing, hierarchy discovery, a process's cgroups.

Pure parsers take text (``/proc/self/mountinfo``, ``/proc/PID/cgroup``) so they are unit-tested
on samples; the ``read_*`` functions feed them from /proc.
"""

from __future__ import annotations

import os
import re

from runtime.cgroups.errors import CgroupError
from runtime.errors import SpecError
from runtime.records import dataclass

FIELD = "linux.cgroupsPath"
# Patterns stay strings, compiled by re on first use (and cached there): compiling
# them at import would cost every CLI call.
_UNIT_PART = r"^[A-Za-z0-9_.@-]+$"


@dataclass(frozen=True)
class CgroupPath:
    """A cgroup's path inside each hierarchy: ``absolute`` paths start at the hierarchy root,
    relative ones under the cgroup of the process that creates the cgroup (as runc does)."""

    path: str

    @property
    def absolute(self) -> bool:
        return self.path.startswith("/")


def parse_cgroups_path(value: str | None, container_id: str) -> CgroupPath:
    """Turn ``linux.cgroupsPath`` into a cgroupfs path.

    - empty: the container id, relative (runc's default);
    - ``/a/b`` or ``a/b``: normalised, ``..`` refused so a path never leaves its base;
    - ``slice:prefix:name`` (systemd style): converted as runc's cgroupfs driver does,
      ``system.slice:crio:abc`` -> ``/system.slice/crio-abc.scope``,
      ``kubepods-besteffort-pod1.slice:crio:abc`` ->
      ``/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/crio-abc.scope``.

    Raises:
        SpecError: naming linux.cgroupsPath.
    """
    if value is None or value == "":
        if not container_id or "/" in container_id or container_id in (".", ".."):
            raise SpecError(FIELD, f"empty, and container id {container_id!r} is no cgroup name")
        return CgroupPath(container_id)
    if not isinstance(value, str) or "\0" in value:
        raise SpecError(FIELD, f"must be a string without NUL, not {value!r}")
    if value.count(":") == 2 and "/" not in value:
        return CgroupPath(_systemd_to_cgroupfs(value))
    parts = [p for p in value.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise SpecError(FIELD, f"must not contain '..': {value!r}")
    if not parts:
        raise SpecError(FIELD, f"names the hierarchy root itself: {value!r}")
    return CgroupPath(("/" if value.startswith("/") else "") + "/".join(parts))


def _systemd_to_cgroupfs(value: str) -> str:
    parent, prefix, name = value.split(":")
    for what, part in (("slice", parent), ("prefix", prefix), ("name", name)):
        if part and not re.match(_UNIT_PART, part):
            raise SpecError(FIELD, f"systemd {what} {part!r} has characters outside "
                                   "[A-Za-z0-9_.@-]")
    if not name:
        raise SpecError(FIELD, f"systemd-style path {value!r} has no name")
    unit = name if name.endswith(".slice") else f"{prefix}-{name}.scope" if prefix \
        else f"{name}.scope"
    return expand_slice(parent or "system.slice").rstrip("/") + "/" + unit


def expand_slice(slice_name: str) -> str:
    """systemd's slice nesting: ``a-b-c.slice`` -> ``/a.slice/a-b.slice/a-b-c.slice``.

    Raises:
        SpecError: not a valid slice name (as systemd and runc define it).
    """
    if slice_name == "-.slice":
        return "/"
    if not slice_name.endswith(".slice") or "/" in slice_name:
        raise SpecError(FIELD, f"invalid systemd slice {slice_name!r}")
    base = slice_name[: -len(".slice")]
    parts = base.split("-")
    if not base or any(p == "" for p in parts):
        raise SpecError(FIELD, f"invalid systemd slice {slice_name!r}")
    out, prefix = "", ""
    for p in parts:
        prefix = f"{prefix}-{p}" if prefix else p
        out += f"/{prefix}.slice"
    return out


@dataclass(frozen=True)
class Mount:
    """One cgroup filesystem mount: ``root`` is the cgroup path mounted at ``mountpoint``."""

    mountpoint: str
    root: str
    version: int  # 1 or 2
    controllers: frozenset[str]  # v1: subsystems and "name=..." ; v2: empty


def parse_mountinfo(text: str) -> list[Mount]:
    """The cgroup and cgroup2 mounts in a /proc/PID/mountinfo text (first mount per target)."""
    mounts: list[Mount] = []
    for line in text.splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 10:
            continue
        sep = fields.index("-")
        fstype, opts = fields[sep + 1], fields[sep + 3] if len(fields) > sep + 3 else ""
        if fstype not in ("cgroup", "cgroup2"):
            continue
        mountpoint = _unescape(fields[4])
        root = _unescape(fields[3])
        if fstype == "cgroup2":
            mounts.append(Mount(mountpoint, root, 2, frozenset()))
            continue
        known = {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
                 "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc"}
        ctrls = frozenset(o for o in opts.split(",") if o in known or o.startswith("name="))
        mounts.append(Mount(mountpoint, root, 1, ctrls))
    return mounts


def _unescape(s: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/PID/cgroup`` as {controller: path}; the cgroup2 entry has the key ``""``.
    Co-mounted controllers (``cpu,cpuacct``) each get an entry."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, ctrls, path = parts
        for c in ctrls.split(",") if ctrls else [""]:
            out[c] = path
    return out


def cgroup_paths_of(pid: int | str = "self") -> dict[str, str]:
    """The cgroup paths of a process, {controller: path} (``""`` for cgroup2) — what an
    exec'd process joins.

    Raises:
        CgroupError: the process is gone or /proc is unreadable.
    """
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return parse_proc_cgroup(f.read())
    except OSError as e:
        raise CgroupError(f"reading cgroups of process {pid}: {e}") from e


def read_mounts() -> list[Mount]:
    try:
        with open("/proc/self/mountinfo") as f:
            return parse_mountinfo(f.read())
    except OSError as e:
        raise CgroupError(f"reading /proc/self/mountinfo: {e}") from e


def dir_in_mount(mount: Mount, cgroup_path: str) -> str:
    """The directory of ``cgroup_path`` (absolute in the hierarchy) under ``mount``.

    Raises:
        CgroupError: the path lies outside the mounted part of the hierarchy.
    """
    root = mount.root.rstrip("/") or "/"
    rel = os.path.relpath(cgroup_path, root)
    if rel.startswith(".."):
        raise CgroupError(f"cgroup {cgroup_path} is outside the part of the hierarchy mounted "
                          f"at {mount.mountpoint} (root {mount.root})")
    return os.path.normpath(os.path.join(mount.mountpoint, rel))
