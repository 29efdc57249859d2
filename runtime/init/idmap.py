"""Idmapped bind mounts (runtime-spec `idmap` / `ridmap` options) for a container that joins a
user namespace by path.

The detached copies are made by stage1 *before* it joins that namespace: mount_setattr's
MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN over the filesystem's own user namespace (the host's)
and a mount nobody has seen yet (an OPEN_TREE_CLONE copy). The init later attaches each copy
with move_mount into its mount namespace, where the container's root owns the mounts.
"""

from __future__ import annotations

import os

from runtime.errors import SpecError
from runtime.init.mountopts import IDMAP_OPTIONS
from runtime.linux import libc
from runtime.spec.model import Spec

AT_FDCWD = -100


def check(spec: Spec) -> None:
    """Idmapped mounts this runtime can make: binds, mapped like the container's user
    namespace joined by path (a mount's own mappings would need a user namespace made for
    them alone). Raises SpecError naming the mount."""
    userns = spec.linux.namespace("user")
    for i, m in enumerate(spec.mounts):
        wants = bool(IDMAP_OPTIONS & set(m.options)) or bool(m.uid_mappings or m.gid_mappings)
        if not wants:
            continue
        if m.uid_mappings or m.gid_mappings:
            raise SpecError(f"mounts[{i}]", "idmapped mounts with mappings of their own are "
                            "not supported; the container's user namespace maps them")
        if userns is None or not userns.path:
            raise SpecError(f"mounts[{i}]", "an idmapped mount needs the container to join "
                            "a user namespace by path")
        if not (m.type == "bind" or {"bind", "rbind"} & set(m.options)):
            raise SpecError(f"mounts[{i}]", "only bind mounts can be idmapped")


def open_idmapped(spec: Spec, bundle: str, userns_fd: int | None
                  ) -> tuple[tuple[int, int], ...]:
    """(mount index, fd of its detached idmapped copy) for every idmap/ridmap mount.
    `rbind` copies the whole tree; `ridmap` idmaps all of it, `idmap` its top mount.

    Raises OSError naming the source (the caller closes nothing: fds are O_CLOEXEC)."""
    out = []
    for i, m in enumerate(spec.mounts):
        opts = set(m.options)
        if not IDMAP_OPTIONS & opts or userns_fd is None:
            continue
        source = m.source if m.source.startswith("/") else os.path.join(bundle, m.source)
        clone = libc.OPEN_TREE_CLONE | libc.OPEN_TREE_CLOEXEC
        fd = libc.open_tree(AT_FDCWD, source,
                            clone | (libc.AT_RECURSIVE if "rbind" in opts else 0))
        try:
            libc.mount_setattr(fd, "", libc.AT_EMPTY_PATH |
                               (libc.AT_RECURSIVE if "ridmap" in opts else 0),
                               libc.MOUNT_ATTR_IDMAP, userns_fd=userns_fd)
        except OSError as e:
            os.close(fd)
            raise OSError(e.errno, f"idmapping {source} for {m.destination}: "
                          f"{e.strerror}") from e
        out.append((i, fd))
    return tuple(out)


def attach(fd: int, target: str) -> None:
    """move_mount the detached copy onto target (a /proc/self/fd path: followed, as mount(2)
    follows it) and close it."""
    try:
        libc.move_mount(fd, "", AT_FDCWD, target,
                        libc.MOVE_MOUNT_F_EMPTY_PATH | libc.MOVE_MOUNT_T_SYMLINKS)
    finally:
        os.close(fd)
