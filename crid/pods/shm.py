"""A /dev/shm per pod: a tmpfs of a configured size in the pod's directory."""

from __future__ import annotations

from pathlib import Path

from crid.errors import Internal
from runtime.linux import libc
from runtime.linux.mounts import unmount_all


class ShmError(Internal):
    """The pod's /dev/shm could not be mounted or unmounted."""


def mount_shm(path: Path, size_bytes: int) -> None:
    """Mounts a fresh tmpfs (mode 1777, nosuid, nodev, noexec) of size_bytes at path.

    Raises:
        ShmError: naming the path and errno.
    """
    path.mkdir(parents=True, exist_ok=True)
    flags = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC
    try:
        libc.mount("shm", str(path), "tmpfs", flags, f"mode=1777,size={size_bytes}")
    except OSError as e:
        raise ShmError(f"mounting the pod's /dev/shm at {path}: {e}") from e


def unmount_shm(path: Path) -> None:
    """Unmounts (lazily) and removes path; nothing mounted or no path at all is fine."""
    try:
        unmount_all(path, lambda p: p.is_dir() and p.is_mount())
    except OSError as e:
        raise ShmError(f"unmounting the pod's /dev/shm at {path}: {e}") from e
    try:
        path.rmdir()
    except FileNotFoundError:
        pass
    except OSError as e:
        raise ShmError(f"removing {path}: {e}") from e
