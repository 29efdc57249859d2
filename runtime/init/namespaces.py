"""Namespace entry for the container: join by path (setns) or create (unshare).

Order matters (runc's nsexec): the user namespace first, so the others are owned by it and
setns has the capabilities it needs; the mount namespace last among the joined ones, because
the other paths are host paths (they are opened before any setns anyway).
"""

from __future__ import annotations

import os

from runtime.linux import libc
from runtime.records import dataclass
from runtime.spec.model import IDMapping, Linux

FLAGS = {
    "user": libc.CLONE_NEWUSER, "pid": libc.CLONE_NEWPID, "network": libc.CLONE_NEWNET,
    "mount": libc.CLONE_NEWNS, "ipc": libc.CLONE_NEWIPC, "uts": libc.CLONE_NEWUTS,
    "cgroup": libc.CLONE_NEWCGROUP, "time": libc.CLONE_NEWTIME,
}
PROC_NAMES = {"user": "user", "pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc",
              "uts": "uts", "cgroup": "cgroup", "time": "time"}
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


@dataclass(frozen=True)
class NsPlan:
    """What to do with namespaces: fds to join (type, fd) and flags to unshare."""

    join: tuple[tuple[str, int], ...]
    new_user: bool
    unshare_flags: int  # everything new except user, pid and cgroup (done at their own step)
    new_pid: bool
    new_cgroup: bool
    idmapped: tuple[tuple[int, int], ...] = ()  # (mount index, detached idmapped copy's fd)
    rootfs_copy: int | None = None  # a new user namespace's detached copy of the rootfs mount

    @property
    def user_fd(self) -> int | None:
        """The fd of the user namespace joined by path, if any."""
        return next((fd for t, fd in self.join if t == "user"), None)


def plan(linux: Linux) -> NsPlan:
    """Open every namespace path now (host paths) and sort the rest into new namespaces.

    Raises OSError naming the path when one cannot be opened.
    """
    join = []
    flags = 0
    for ns_type in JOIN_ORDER:
        ns = linux.namespace(ns_type)
        if ns is None:
            continue
        if ns.path:
            try:
                join.append((ns_type, os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)))
            except OSError as e:
                raise OSError(e.errno, f"opening {ns_type} namespace {ns.path}: "
                              f"{e.strerror}") from e
        elif ns_type not in ("user", "pid", "cgroup"):
            flags |= FLAGS[ns_type]
    new = {ns.type for ns in linux.namespaces if not ns.path}
    return NsPlan(tuple(join), "user" in new, flags, "pid" in new, "cgroup" in new)


def join_all(fds: tuple[tuple[str, int], ...]) -> None:
    """setns into each (type, fd) in order, closing the fds."""
    for ns_type, fd in fds:
        try:
            libc.setns(fd, FLAGS[ns_type])
        except OSError as e:
            raise OSError(e.errno, f"joining {ns_type} namespace: {e.strerror}") from e
        finally:
            os.close(fd)


def join_process(pid: int) -> None:
    """setns into every namespace of pid that differs from ours (user first, mount last).

    The pid namespace applies to children only: the caller must fork afterwards.
    """
    fds = []
    for ns_type in JOIN_ORDER:
        name = PROC_NAMES[ns_type]
        theirs = f"/proc/{pid}/ns/{name}"
        try:
            st = os.stat(theirs)
        except FileNotFoundError:
            continue  # namespace type not supported by this kernel
        mine = os.stat(f"/proc/self/ns/{name}")
        if (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino):
            continue
        fds.append((ns_type, os.open(theirs, os.O_RDONLY | os.O_CLOEXEC)))
    join_all(tuple(fds))


def format_map(maps: tuple[IDMapping, ...]) -> str:
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps)


def write_id_maps(pid: int, linux: Linux) -> None:
    """Write uid_map and gid_map of pid (done by the parent, which holds the capabilities)."""
    for name, maps in (("uid_map", linux.uid_mappings), ("gid_map", linux.gid_mappings)):
        path = f"/proc/{pid}/{name}"
        try:
            with open(path, "w") as f:
                f.write(format_map(maps))
        except OSError as e:
            raise OSError(e.errno, f"writing {path}: {e.strerror}") from e


def write_time_offsets(offsets: tuple[tuple[str, int, int], ...]) -> None:
    """Offsets of the time namespace unshared for our children (before the first fork)."""
    if not offsets:
        return
    text = "".join(f"{clock} {secs} {nsecs}\n" for clock, secs, nsecs in offsets)
    with open("/proc/self/timens_offsets", "w") as f:
        f.write(text)
