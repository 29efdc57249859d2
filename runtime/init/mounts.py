"""The container's mounts, made inside its mount namespace before pivot_root.

Every destination is resolved with securejoin and the resulting inode re-checked through
/proc/self/fd before mount(2) uses it, so neither ``../../x`` nor a rootfs symlink
(``/etc -> /``) can put a mount outside the rootfs. The mount calls go through a ``MountCalls``
(the kernel's by default), so their order and failure handling are unit-tested without root.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable

from runtime.init import idmap, mountopts
from runtime.linux import libc, securejoin
from runtime.linux.syscalls import LINUX, MountCalls
from runtime.records import dataclass
from runtime.spec.model import Mount


@dataclass(frozen=True)
class CgroupHierarchy:
    """A hierarchy the init is in: name under /sys/fs/cgroup, host dir of its cgroup."""

    name: str
    host_dir: str


def mount_entry(root: str, bundle: str, m: Mount,
                cgroups: Callable[[], tuple[CgroupHierarchy, ...]],
                idmapped: int | None = None, calls: MountCalls = LINUX) -> None:
    """Make one OCI mount under root; ``cgroups()`` gives the container's cgroups to a cgroup
    mount; ``idmapped``, the fd of a bind's detached idmapped copy (attached, not bound).
    Raises OSError (securejoin.UnsafePath among them) naming the destination."""
    opts = mountopts.parse(m.options, m.type)
    if m.type in ("cgroup", "cgroup2") and not opts.is_bind:
        _mount_cgroups(root, m, opts, cgroups(), calls)
        return
    if opts.is_bind:
        source = m.source if m.source.startswith("/") else os.path.join(bundle, m.source)
        # An idmapped copy is asked, not its source: in a user namespace the source's path
        # may not be reachable any more (isdir would say False and make a file target).
        is_dir = (stat.S_ISDIR(os.fstat(idmapped).st_mode) if idmapped is not None
                  else os.path.isdir(source))
        target = _make_target(root, m.destination, is_dir)
        if idmapped is not None:
            _with_target(root, target, lambda t: idmap.attach(idmapped, t))
        else:
            _with_target(root, target, lambda t: calls.mount(
                source, t, None, opts.flags & (libc.MS_BIND | libc.MS_REC)))
        if opts.remount_flags:
            remount(target, opts.remount_flags, calls)
    else:
        target = _make_target(root, m.destination, True)
        source = m.source or m.type
        try:
            _with_target(root, target, lambda t: calls.mount(
                source, t, m.type, opts.flags & ~(libc.MS_BIND | libc.MS_REC), opts.data or None))
        except OSError as e:
            if m.type != "sysfs" or e.errno != errno.EPERM:
                raise
            # sysfs cannot be mounted without a private network namespace: bind the host's.
            calls.mount("/sys", target, None, libc.MS_BIND | libc.MS_REC)
            remount(target, opts.remount_flags, calls)
    for flag in opts.propagation:
        calls.mount(None, target, None, flag)
    if opts.recursive:
        set_recursive(root, target, opts.rec_set, opts.rec_clr, calls)


def set_recursive(root: str, target: str, attr_set: int, attr_clr: int,
                  calls: MountCalls = LINUX) -> None:
    """mount_setattr(AT_RECURSIVE) on the mount now at target (rro and the other recursive
    options): unlike a bind remount, it reaches every submount too. Opened after the mount,
    so the fd is the new mount's root, and checked to be inside root like every target."""
    fd = securejoin.open_in_root(root, target)
    try:
        calls.mount_setattr(fd, "", libc.AT_EMPTY_PATH | libc.AT_RECURSIVE, attr_set, attr_clr)
    finally:
        os.close(fd)


def remount(target: str, flags: int, calls: MountCalls = LINUX) -> None:
    """Bind-remount target with flags, keeping the flags the kernel locked on it.

    A bind of a mount that is nosuid/nodev/noexec (or mounted in another user namespace) cannot
    drop those: MS_REMOUNT fails with EPERM unless they are repeated, so retry with them added.
    """
    base = libc.MS_BIND | libc.MS_REMOUNT
    try:
        calls.mount(None, target, None, base | flags)
    except OSError as e:
        if e.errno != errno.EPERM:
            raise
        locked = mountopts.statvfs_to_ms(os.statvfs(target).f_flag)
        calls.mount(None, target, None, base | flags | locked)


def _make_target(root: str, dest: str, is_dir: bool) -> str:
    if is_dir:
        return securejoin.mkdir_all(root, dest)
    return securejoin.create_file(root, dest)


def _with_target(root: str, target: str, do: Callable[[str], None]) -> None:
    """Run do("/proc/self/fd/N") on target opened O_PATH and checked to be inside root."""
    fd = securejoin.open_in_root(root, target)
    try:
        do(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def _mount_cgroups(root: str, m: Mount, opts: mountopts.MountOptions,
                   cgroups: tuple[CgroupHierarchy, ...], calls: MountCalls) -> None:
    """cgroup v1 (hybrid host): a tmpfs with the container's own cgroup of each hierarchy bound
    below it; cgroup v2 only: bind the container's cgroup directory itself."""
    flags = opts.flags & ~(libc.MS_BIND | libc.MS_REC)
    target = securejoin.mkdir_all(root, m.destination)
    v1 = [h for h in cgroups if h.name != ""]
    if not v1:
        unified = next((h for h in cgroups if h.name == ""), None)
        if unified is None:
            return
        _with_target(root, target, lambda t: calls.mount(unified.host_dir, t, None,
                                                         libc.MS_BIND | libc.MS_REC))
        remount(target, flags & mountopts.FLAGS_KEPT_ON_REMOUNT, calls)
        return
    _with_target(root, target, lambda t: calls.mount(
        "tmpfs", t, "tmpfs", flags & ~libc.MS_RDONLY, "mode=755"))
    # The tmpfs is new and ours: each hierarchy's directory is made in it and bound through
    # the checked fd of its root, with no path walk (nor symlink) in between.
    fd = securejoin.open_in_root(root, target)
    try:
        for h in v1:
            os.mkdir(h.name, 0o755, dir_fd=fd)
            sub = f"/proc/self/fd/{fd}/{h.name}"
            calls.mount(h.host_dir, sub, None, libc.MS_BIND | libc.MS_REC)
            remount(sub, flags & mountopts.FLAGS_KEPT_ON_REMOUNT, calls)
            for alias in h.name.split(","):  # "cpu,cpuacct" is also reachable as cpu, cpuacct
                if alias != h.name:
                    with contextlib.suppress(FileExistsError):
                        os.symlink(h.name, alias, dir_fd=fd)
    finally:
        os.close(fd)
    if flags & libc.MS_RDONLY:
        remount(target, flags & mountopts.FLAGS_KEPT_ON_REMOUNT, calls)


def host_cgroups(pid: str = "self") -> tuple[CgroupHierarchy, ...]:
    """The hierarchies of /proc/PID/cgroup, each with the directory of PID's cgroup as seen in
    *our* mount namespace (our /proc/self/mountinfo, minus the root of our cgroup mount)."""
    mounts: dict[str, tuple[str, str]] = {}  # controllers ("cpu", "name=systemd", "") -> mount
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            fstype, _, super_opts = post.split()[:3]
            root, mnt = pre.split()[3:5]
            if fstype == "cgroup2":
                mounts.setdefault("", (mnt, root))
            elif fstype == "cgroup":
                ctl = ",".join(o for o in super_opts.split(",")
                               if o not in ("rw", "ro") and "=" not in o or o.startswith("name="))
                mounts.setdefault(ctl, (mnt, root))
    out = []
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctl, path = line.rstrip("\n").split(":", 2)
            found = mounts.get(ctl) or _match(mounts, ctl)
            if found is None:
                continue
            mnt, root = found
            rel = os.path.relpath(path, root) if path.startswith(root) else path.lstrip("/")
            name = "" if ctl == "" else os.path.basename(mnt)
            out.append(CgroupHierarchy(name, os.path.normpath(os.path.join(mnt, rel))))
    return tuple(out)


def _match(mounts: dict[str, tuple[str, str]], ctl: str) -> tuple[str, str] | None:
    want = set(ctl.split(","))
    for key, found in mounts.items():
        if key and set(key.split(",")) == want:
            return found
    return None
