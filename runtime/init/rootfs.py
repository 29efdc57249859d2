"""Root filesystem set-up inside the container's mount namespace, in runc's order:
propagation, mounts, devices, (createContainer hooks), pivot_root, then the finishing touches
that need the container's own /proc: sysctls, readonly and masked paths, root.readonly."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable

from runtime.init import devices, mounts
from runtime.init.mountopts import PROPAGATION_OPTIONS
from runtime.linux import libc, securejoin
from runtime.linux.syscalls import LINUX, MountCalls
from runtime.spec.model import Spec

AT_FDCWD = -100


def prepare(root: str, propagation: str, copy: int | None = None,
            calls: MountCalls = LINUX) -> None:
    """Make / recursively slave (or the requested propagation), the rootfs's parent mount
    private (pivot_root refuses a shared parent) and the rootfs a mount point of its own.
    ``copy``: a detached copy of the rootfs mount (``copy_tree``), used where the rootfs
    cannot be reached (and closed)."""
    flag = PROPAGATION_OPTIONS.get(propagation or "rslave", libc.MS_SLAVE | libc.MS_REC)
    if propagation in ("shared", "slave", "private", "unbindable"):
        flag |= libc.MS_REC  # applied to the whole tree first, like runc
    calls.mount(None, "/", None, flag)
    if copy is not None:
        try:
            if _unreachable(root):
                _attach_unreachable(root, copy)
                return
        finally:
            os.close(copy)
    _make_parent_private(root, calls)
    calls.mount(root, root, None, libc.MS_BIND | libc.MS_REC)


def copy_tree(root: str) -> int | None:
    """A detached recursive copy of the rootfs mount, made before a new user namespace: its
    root (host uid 1000, say) may not traverse the directories above the rootfs (a bundle
    in a 0700 directory, as runtime-tools makes them), the host's root can. None on a kernel
    without open_tree (< 5.2): the rootfs must then be reachable, as for runc."""
    try:
        return libc.open_tree(AT_FDCWD, root, libc.OPEN_TREE_CLONE | libc.OPEN_TREE_CLOEXEC |
                              libc.AT_RECURSIVE)
    except OSError as e:
        if e.errno == errno.ENOSYS:
            return None
        raise


def _unreachable(root: str) -> bool:
    try:
        os.stat(root)
    except PermissionError:
        return True
    return False


def _attach_unreachable(root: str, copy: int) -> None:
    """Where the container's root cannot walk to the rootfs, give the path a way there in
    this mount namespace only: a tmpfs on the first directory it cannot search (whatever
    was below is out of its reach anyway), the rest of the path made in it, the copy
    attached at the end. The paths stay the spec's; nothing changes on the host."""
    parts = root.strip("/").split("/")
    first = next(i for i in range(len(parts)) if not os.access(
        "/" + "/".join(parts[:i + 1]), os.X_OK))
    blocked = "/" + "/".join(parts[:first + 1])
    libc.mount("tmpfs", blocked, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC,
               "mode=755")
    libc.mount(None, blocked, None, libc.MS_PRIVATE)
    os.makedirs(root, mode=0o755, exist_ok=True)
    libc.move_mount(copy, "", AT_FDCWD, root, libc.MOVE_MOUNT_F_EMPTY_PATH)


def _make_parent_private(root: str, calls: MountCalls) -> None:
    path = root
    while True:
        try:
            calls.mount(None, path, None, libc.MS_PRIVATE)
            return
        except OSError as e:
            if e.errno != errno.EINVAL or path == "/":  # EINVAL: not a mount point
                raise
            path = os.path.dirname(path)


def mount_all(spec: Spec, root: str, bundle: str,
              cgroups: Callable[[], tuple[mounts.CgroupHierarchy, ...]],
              idmapped: dict[int, int] | None = None, calls: MountCalls = LINUX) -> None:
    """Every spec mount, in order; ``cgroups()`` is asked for only by a cgroup mount;
    ``idmapped``: mount index -> fd of the detached idmapped copy to attach instead of
    binding. Raises OSError naming the mount that failed (the ones before it stay)."""
    for i, m in enumerate(spec.mounts):
        try:
            mounts.mount_entry(root, bundle, m, cgroups, (idmapped or {}).get(i), calls)
        except OSError as e:
            raise OSError(e.errno, f"mounting {m.type or 'bind'} {m.source!r} on "
                          f"{m.destination}: {e.strerror or e}") from e


def create_devices(spec: Spec, root: str) -> None:
    """/dev contents unless /dev is bound from the host, then ``linux.devices``."""
    dev_bound = any(os.path.normpath(m.destination) == "/dev" and
                    ("bind" in m.options or "rbind" in m.options or m.type == "bind")
                    for m in spec.mounts)
    if not dev_bound:
        devices.create_defaults(root, any(m.type == "devpts" for m in spec.mounts))
    for dev in spec.linux.devices:
        try:
            devices.create_device(root, dev)
        except OSError as e:
            raise OSError(e.errno, f"creating device {dev.path}: {e.strerror}") from e


def pivot(root: str, no_pivot: bool) -> None:
    """Make root the process's /. pivot_root as runc does (no put_old directory: stack the old
    root under the new one and detach it); MS_MOVE+chroot when root is on an initramfs."""
    if no_pivot or _on_initramfs():
        os.chdir(root)
        libc.mount(root, "/", None, libc.MS_MOVE)
        os.chroot(".")
        os.chdir("/")
        return
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(root, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        libc.pivot_root(".", ".")
        os.fchdir(old)
        # the old root must not propagate the detach to the host
        libc.mount(None, ".", None, libc.MS_SLAVE | libc.MS_REC)
        libc.umount2(".", libc.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old)
        os.close(new)


def _on_initramfs() -> bool:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == "/":
                fstype = line.partition(" - ")[2].split()[0]
                return fstype in ("rootfs", "ramfs")
    return False


def finish(spec: Spec, calls: MountCalls = LINUX) -> None:
    """After pivot_root: propagation of /, sysctls, readonly and masked paths, read-only root."""
    if spec.linux.rootfs_propagation:
        calls.mount(None, "/", None, PROPAGATION_OPTIONS[spec.linux.rootfs_propagation])
    for key, value in spec.linux.sysctl:
        write_sysctl(key, value)
    for path in spec.linux.readonly_paths:
        readonly_path(path, calls)
    for path in spec.linux.masked_paths:
        mask_path(path, calls)
    if spec.root.readonly:
        mounts.remount("/", libc.MS_RDONLY, calls)


def write_sysctl(key: str, value: str) -> None:
    rel = key.replace(".", "/")
    if any(p in ("", "..") for p in rel.split("/")):
        raise ValueError(f"sysctl {key!r}: not a valid key")
    path = "/proc/sys/" + rel
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        raise OSError(e.errno, f"setting sysctl {key}={value}: {e.strerror}") from e


def readonly_path(path: str, calls: MountCalls = LINUX) -> None:
    """Bind path on itself read-only; a missing path is skipped (runc)."""
    target = securejoin.secure_join("/", path)
    if not os.path.lexists(target):
        return
    calls.mount(target, target, None, libc.MS_BIND | libc.MS_REC)
    mounts.remount(target, libc.MS_RDONLY, calls)


def mask_path(path: str, calls: MountCalls = LINUX) -> None:
    """Hide path: /dev/null bound over a file, an empty read-only tmpfs over a directory."""
    target = securejoin.secure_join("/", path)
    try:
        st = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISDIR(st.st_mode):
        calls.mount("tmpfs", target, "tmpfs", libc.MS_RDONLY)
    else:
        calls.mount("/dev/null", target, None, libc.MS_BIND)
