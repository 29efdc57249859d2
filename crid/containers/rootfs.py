"""A container's copy-on-write root: overlayfs over the image's layers plus a writable upper."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from crid.errors import Internal
from runtime import libc

# mount(2) data is one page; longer lowerdir lists need the new mount API (not used yet).
MAX_MOUNT_DATA = 4000


def mount_rootfs(layers: list[Path], container_dir: Path) -> Path:
    """Mounts <container_dir>/rootfs: lowerdir = layers (top first), upper and work beside it.

    Raises:
        Internal: the mount fails (the message names the directory and errno).
    """
    upper, work, merged = (container_dir / n for n in ("upper", "work", "rootfs"))
    for d in (upper, work, merged):
        d.mkdir(parents=True, exist_ok=True)
    if not layers:  # an image with no layers: an empty, writable root
        layers = [_empty_layer(container_dir)]
    data = (f"lowerdir={':'.join(str(p) for p in layers)},upperdir={upper},workdir={work},"
            "index=off")
    if len(data) > MAX_MOUNT_DATA:
        raise Internal(f"mounting rootfs at {merged}: {len(layers)} layers exceed the mount "
                       "option size limit")
    try:
        libc.mount("overlay", str(merged), "overlay", 0, data)
    except OSError as e:
        raise Internal(f"mounting rootfs at {merged}: {e}") from e
    return merged


def _empty_layer(container_dir: Path) -> Path:
    empty = container_dir / "empty"
    empty.mkdir(exist_ok=True)
    return empty


def unmount_rootfs(container_dir: Path) -> None:
    """Unmounts the rootfs if mounted (idempotent)."""
    merged = container_dir / "rootfs"
    while _is_mountpoint(merged):
        try:
            libc.umount2(str(merged), libc.MNT_DETACH)
        except OSError as e:
            if e.errno in (errno.EINVAL, errno.ENOENT):
                return
            raise Internal(f"unmounting rootfs at {merged}: {e}") from e


def remove_container_dir(container_dir: Path) -> None:
    """Unmounts and deletes the writable layer and everything else of the container."""
    unmount_rootfs(container_dir)
    shutil.rmtree(container_dir, ignore_errors=True)


def _is_mountpoint(path: Path) -> bool:
    target = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as fh:
            return any(line.split()[4] == target for line in fh)
    except OSError:
        return False


def writable_layer_usage(container_dir: Path) -> tuple[int, int]:
    """Bytes and inodes of the container's writable layer."""
    from crid.fsusage import dir_usage

    usage = dir_usage(container_dir / "upper")
    return usage.used_bytes, usage.inodes_used
