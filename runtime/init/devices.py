"""Device nodes in the container's /dev: the OCI default set, linux.devices, and symlinks."""

from __future__ import annotations

import errno
import os
import stat

from runtime.linux import libc, securejoin
from runtime.spec.model import Device

# runtime-spec config-linux.md "Default Devices"
DEFAULT_DEVICES = (
    Device("c", "/dev/null", 1, 3, 0o666, 0, 0),
    Device("c", "/dev/zero", 1, 5, 0o666, 0, 0),
    Device("c", "/dev/full", 1, 7, 0o666, 0, 0),
    Device("c", "/dev/random", 1, 8, 0o666, 0, 0),
    Device("c", "/dev/urandom", 1, 9, 0o666, 0, 0),
    Device("c", "/dev/tty", 5, 0, 0o666, 0, 0),
)
DEV_SYMLINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"))
_KIND = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def create_defaults(root: str, has_devpts: bool) -> None:
    """The default nodes and symlinks, all directly in /dev: made relative to one directory
    fd opened (and checked) inside root, so each costs a few syscalls and no path walk."""
    dev_dir = securejoin.mkdir_all(root, "/dev")
    fd = securejoin.open_in_root(root, dev_dir)
    try:
        for dev in DEFAULT_DEVICES:
            _node_at(fd, dev, root, dev_dir)
        for target, link in _symlinks(has_devpts):
            _symlink_at(fd, target, os.path.basename(link))
    finally:
        os.close(fd)


def _node_at(fd: int, dev: Device, root: str, dev_dir: str) -> None:
    name = os.path.basename(dev.path)
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, f"device {dev.path}: a directory is in the way")
        os.unlink(name, dir_fd=fd)
    mode = dev.file_mode if dev.file_mode is not None else 0o666
    try:
        os.mknod(name, mode | _KIND[dev.type], os.makedev(dev.major, dev.minor), dir_fd=fd)
    except PermissionError:  # a user namespace: bind the host's node
        _bind_host_node(root, dev.path, os.path.join(dev_dir, name))
        return
    os.chown(name, dev.uid or 0, dev.gid or 0, dir_fd=fd, follow_symlinks=False)
    os.chmod(name, mode, dir_fd=fd)


def _symlink_at(fd: int, target: str, name: str) -> None:
    try:
        os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        if name != "ptmx":
            return
        os.unlink(name, dir_fd=fd)
    os.symlink(target, name, dir_fd=fd)


def _symlinks(has_devpts: bool) -> list[tuple[str, str]]:
    links = list(DEV_SYMLINKS)
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    if has_devpts:
        links.append(("pts/ptmx", "/dev/ptmx"))
    return links


def create_device(root: str, dev: Device, bind_fallback: bool = True) -> None:
    """mknod dev under root; when mknod is not permitted (user namespace), bind the host node.

    Raises OSError naming the device.
    """
    parent = os.path.dirname(dev.path)
    securejoin.mkdir_all(root, parent)
    path = securejoin.secure_join(root, dev.path)
    if os.path.lexists(path):
        if os.path.isdir(path) and not os.path.islink(path):
            raise IsADirectoryError(errno.EISDIR, f"device {dev.path}: a directory is in the way")
        os.unlink(path)
    mode = dev.file_mode if dev.file_mode is not None else 0o666
    try:
        os.mknod(path, mode | _KIND[dev.type], os.makedev(dev.major, dev.minor))
    except PermissionError:
        if not bind_fallback or dev.type == "p":
            raise
        _bind_host_node(root, dev.path, path)
        return
    os.chown(path, dev.uid or 0, dev.gid or 0)
    os.chmod(path, mode)


def _bind_host_node(root: str, host_path: str, path: str) -> None:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    os.close(fd)
    fd = securejoin.open_in_root(root, path)
    try:
        libc.mount(host_path, f"/proc/self/fd/{fd}", None, libc.MS_BIND)
    finally:
        os.close(fd)
