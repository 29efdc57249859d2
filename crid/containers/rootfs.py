"""A container's copy-on-write root: overlayfs over the image's layers plus a writable upper."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from crid.errors import Internal
from runtime.linux import libc
from runtime.linux.mounts import unmount_all
from runtime.linux.syscalls import LINUX, MountCalls

# mount(2) data is one page; longer lowerdir lists need the new mount API (not used yet).
MAX_MOUNT_DATA = 4000
AT_FDCWD = -100


@dataclass(frozen=True)
class PodUserns:
    """A pod's user namespace as the rootfs needs it: its pin, and the host uid and gid of
    the container's root."""

    path: str
    root_uid: int
    root_gid: int


def mount_rootfs(layers: list[Path], container_dir: Path,
                 userns: PodUserns | None = None, calls: MountCalls = LINUX) -> Path:
    """Mounts <container_dir>/rootfs: lowerdir = layers (top first), upper and work beside it.
    With ``userns`` (a pod's user namespace), the layers are reached through idmapped mounts
    mapped like that namespace (see `_idmapped_layers`).

    Raises:
        Internal: the mount fails (the message names the directory and errno).
    """
    upper, work, merged = (container_dir / n for n in ("upper", "work", "rootfs"))
    for d in (upper, work, merged):
        d.mkdir(parents=True, exist_ok=True)
    if not layers:  # an image with no layers: an empty, writable root
        layers = [_empty_layer(container_dir)]
    with contextlib.ExitStack() as fds:
        lower = [str(p) for p in layers]
        if userns is not None:
            lower = _idmapped_layers(layers, userns.path, fds, calls)
            # The upper cannot be idmapped: overlayfs writes it with the mounter's (host
            # root's) credentials, which an idmap of the pod's range cannot represent
            # (EOVERFLOW, and the overlay falls back to read-only). Its root directory, new
            # and empty, is the container root's (it is the merged "/"); what the container
            # writes is stored with its host ids, as with containerd's idmapped layers.
            os.chown(upper, userns.root_uid, userns.root_gid)
        # volatile: the overlay never syncs its upper, so unmounting it does not sync the
        # whole filesystem below (3-11 ms of every RemoveContainer here, more on a busy
        # disk). Sound because a writable layer lives for one run of one container: crid
        # never mounts an upper again (a docker start makes a new container). Unsynced data
        # is lost only in a host crash, which ends the container: its layer is then only
        # removed, or read by docker diff/commit/export, which may miss its last writes.
        data = (f"lowerdir={':'.join(lower)},upperdir={upper},workdir={work},index=off,"
                "volatile")
        if len(data) > MAX_MOUNT_DATA:
            raise Internal(f"mounting rootfs at {merged}: {len(layers)} layers exceed the "
                           "mount option size limit")
        try:
            calls.mount("overlay", str(merged), "overlay", 0, data)
        except OSError as e:
            raise Internal(f"mounting rootfs at {merged}: {e}") from e
    return merged


def _idmapped_layers(layers: list[Path], userns_path: str, fds: contextlib.ExitStack,
                     calls: MountCalls) -> list[str]:
    """Detached idmapped copies of each layer, as /proc/self/fd paths for the overlay options.

    overlayfs itself cannot be idmapped (mount_setattr refuses it: EINVAL on 6.18), but since
    5.19 it takes idmapped lower layers: files stored as host uid 0 in the shared layers appear
    as the pod's mapped root, and no layer is copied or chowned per pod. The overlay holds
    its layers' mounts, so the fds are closed once it is mounted."""
    try:
        userns = os.open(userns_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise Internal(f"opening the pod user namespace {userns_path}: {e}") from e
    fds.callback(os.close, userns)

    def idmapped(path: Path) -> str:
        try:
            fd = calls.open_tree(AT_FDCWD, str(path),
                                libc.OPEN_TREE_CLONE | libc.OPEN_TREE_CLOEXEC)
        except OSError as e:
            raise Internal(f"idmapping layer {path}: {e}") from e
        fds.callback(os.close, fd)
        try:
            calls.mount_setattr(fd, "", libc.AT_EMPTY_PATH, libc.MOUNT_ATTR_IDMAP,
                               userns_fd=userns)
        except OSError as e:
            raise Internal(f"idmapping layer {path}: {e}") from e
        return f"/proc/self/fd/{fd}"

    return [idmapped(p) for p in layers]


def _empty_layer(container_dir: Path) -> Path:
    empty = container_dir / "empty"
    empty.mkdir(exist_ok=True)
    return empty


def unmount_rootfs(container_dir: Path, calls: MountCalls = LINUX) -> None:
    """Unmounts the rootfs if mounted (idempotent)."""
    merged = container_dir / "rootfs"
    try:
        unmount_all(merged, calls.is_mounted, calls.umount2)
    except OSError as e:
        raise Internal(f"unmounting rootfs at {merged}: {e}") from e


def remove_container_dir(container_dir: Path, calls: MountCalls = LINUX) -> None:
    """Unmounts and deletes the writable layer and everything else of the container."""
    unmount_rootfs(container_dir, calls)
    shutil.rmtree(container_dir, ignore_errors=True)


def writable_layer_usage(container_dir: Path) -> tuple[int, int]:
    """Bytes and inodes of the container's writable layer."""
    from crid.fsusage import dir_usage

    usage = dir_usage(container_dir / "upper")
    return usage.used_bytes, usage.inodes_used
