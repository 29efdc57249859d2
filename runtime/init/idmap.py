"""Idmapped bind mounts (runtime-spec `idmap` / `ridmap` options, and a mount's own
`uidMappings` / `gidMappings`).

The detached copies are made by stage1 *before* it joins or creates the container's user
namespace: mount_setattr's MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN over the filesystem's own
user namespace (the host's) and a mount nobody has seen yet (an OPEN_TREE_CLONE copy). The
init later attaches each copy with move_mount into its mount namespace.

The user namespace that carries a mapping is the one the container joins by path, or, for a
mount's own mappings (and for a container that makes its user namespace), one made here for
that mapping alone by a short-lived child (as runc ≥ 1.2 does): its fd is all the mount keeps.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

from runtime.errors import SpecError, UnsupportedMount
from runtime.init.mountopts import IDMAP_OPTIONS
from runtime.init.namespaces import format_map
from runtime.linux import libc
from runtime.spec.model import IDMapping, Mount, Spec

AT_FDCWD = -100
Mappings = tuple[tuple[IDMapping, ...], tuple[IDMapping, ...]]


def wanted(m: Mount) -> bool:
    """Whether the mount is to be idmapped: an idmap option, or mappings of its own (which
    runc takes as `idmap`)."""
    return bool(IDMAP_OPTIONS & set(m.options)) or bool(m.uid_mappings or m.gid_mappings)


def check(spec: Spec) -> None:
    """Idmapped mounts this runtime can make: binds, with both mappings of their own, or
    mapped like the container's user namespace. Raises SpecError naming the mount."""
    userns = spec.linux.namespace("user")
    for i, m in enumerate(spec.mounts):
        if not wanted(m):
            continue
        if not (m.type == "bind" or {"bind", "rbind"} & set(m.options)):
            raise SpecError(f"mounts[{i}]", "only bind mounts can be idmapped")
        if bool(m.uid_mappings) != bool(m.gid_mappings):
            raise SpecError(f"mounts[{i}]", "an idmapped mount needs both uidMappings and "
                            "gidMappings")
        if not m.uid_mappings and userns is None:
            raise SpecError(f"mounts[{i}]", "an idmapped mount without mappings of its own "
                            "needs the container to have a user namespace")


def open_idmapped(spec: Spec, bundle: str, userns_fd: int | None
                  ) -> tuple[tuple[int, int], ...]:
    """(mount index, fd of its detached idmapped copy) for every idmapped mount.
    `rbind` copies the whole tree; `ridmap` idmaps all of it, `idmap` its top mount.
    ``userns_fd``: the user namespace the container joins by path, if any.

    Raises UnsupportedMount when the kernel will not idmap the source's filesystem or that
    of a submount (named), OSError naming the source for the rest; the fds already made are
    O_CLOEXEC."""
    out = []
    with _Namespaces(userns_fd) as namespaces:
        for i, m in enumerate(spec.mounts):
            if not wanted(m):
                continue
            fd = namespaces.fd(_mappings(spec, m))
            source = m.source if m.source.startswith("/") else os.path.join(bundle, m.source)
            out.append((i, _idmapped_copy(source, m, fd)))
    return tuple(out)


def _mappings(spec: Spec, m: Mount) -> Mappings | None:
    """The mount's own mappings, else the container's new user namespace's, else None (the
    namespace joined by path)."""
    if m.uid_mappings:
        return m.uid_mappings, m.gid_mappings
    userns = spec.linux.namespace("user")
    if userns is not None and not userns.path:
        return spec.linux.uid_mappings, spec.linux.gid_mappings
    return None


def _idmapped_copy(source: str, m: Mount, userns_fd: int) -> int:
    opts = set(m.options)
    clone = libc.OPEN_TREE_CLONE | libc.OPEN_TREE_CLOEXEC
    fd = libc.open_tree(AT_FDCWD, source, clone | (libc.AT_RECURSIVE if "rbind" in opts else 0))
    recursive = "ridmap" in opts
    try:
        libc.mount_setattr(fd, "", libc.AT_EMPTY_PATH | (libc.AT_RECURSIVE if recursive else 0),
                           libc.MOUNT_ATTR_IDMAP, userns_fd=userns_fd)
    except OSError as e:
        os.close(fd)
        what = f"idmapping {source} for {m.destination}"
        if e.errno != errno.EINVAL:
            raise OSError(e.errno, f"{what}: {e.strerror}") from e
        bad = _unmappable_submount(source, userns_fd) if recursive else None
        if bad:
            raise UnsupportedMount(f"{what}: its submount {bad[0]} ({bad[1]}) cannot be "
                                   "idmapped (the kernel refuses MOUNT_ATTR_IDMAP for that "
                                   "filesystem)") from e
        raise UnsupportedMount(f"{what}: the kernel refuses MOUNT_ATTR_IDMAP for its "
                               "filesystem") from e
    return fd


def _unmappable_submount(source: str, userns_fd: int) -> tuple[str, str] | None:
    """(mount point, filesystem type) of the first mount at or below source that refuses an
    idmap on its own: what made a recursive idmap fail (which the kernel does not say)."""
    for point, fstype in _mounts_below(os.path.realpath(source)):
        try:
            fd = libc.open_tree(AT_FDCWD, point, libc.OPEN_TREE_CLONE | libc.OPEN_TREE_CLOEXEC)
        except OSError:
            continue
        try:
            libc.mount_setattr(fd, "", libc.AT_EMPTY_PATH, libc.MOUNT_ATTR_IDMAP,
                               userns_fd=userns_fd)
        except OSError:
            return point, fstype
        finally:
            os.close(fd)
    return None


def _mounts_below(top: str) -> Iterator[tuple[str, str]]:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            point = _unescape(pre.split()[4])
            if point == top or point.startswith(top.rstrip("/") + "/"):
                yield point, post.split()[0]


def _unescape(field: str) -> str:
    """mountinfo's octal escapes (\\040 for a space, \\011, \\012, \\134)."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field


class _Namespaces:
    """User namespace fds by mapping: the one joined by path for None, one made per distinct
    mapping otherwise; the made ones are closed on exit (the idmapped mounts hold their
    own reference)."""

    def __init__(self, joined: int | None) -> None:
        self._joined = joined
        self._made: dict[Mappings, int] = {}

    def __enter__(self) -> _Namespaces:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._made.values():
            os.close(fd)

    def fd(self, mappings: Mappings | None) -> int:
        if mappings is None:
            assert self._joined is not None  # check(): a user namespace, joined by path
            return self._joined
        if mappings not in self._made:
            self._made[mappings] = userns_for(*mappings)
        return self._made[mappings]


def userns_for(uids: tuple[IDMapping, ...], gids: tuple[IDMapping, ...]) -> int:
    """An fd of a new user namespace with these mappings, made by a child that unshares it
    and waits while we (holding the capabilities over the parent namespace) write its maps;
    the fd keeps the namespace once the child is gone.

    Raises OSError naming what failed (the child is reaped either way)."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(ready_r)
            os.close(go_w)
            libc.unshare(libc.CLONE_NEWUSER)
            os.write(ready_w, b"u")
            os.read(go_r, 1)
            code = 0
        finally:
            os._exit(code)
    os.close(ready_w)
    os.close(go_r)
    try:
        if os.read(ready_r, 1) != b"u":
            raise OSError(0, "making a user namespace for an idmapped mount: the child "
                          "failed to unshare it")
        for name, maps in (("uid_map", uids), ("gid_map", gids)):
            path = f"/proc/{pid}/{name}"
            try:
                with open(path, "w") as f:
                    f.write(format_map(maps))
            except OSError as e:
                raise OSError(e.errno, f"writing {path} for an idmapped mount: "
                              f"{e.strerror}") from e
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(go_w)  # the child's read returns: it exits
        os.waitpid(pid, 0)


def attach(fd: int, target: str) -> None:
    """move_mount the detached copy onto target (a /proc/self/fd path: followed, as mount(2)
    follows it) and close it."""
    try:
        libc.move_mount(fd, "", AT_FDCWD, target,
                        libc.MOVE_MOUNT_F_EMPTY_PATH | libc.MOVE_MOUNT_T_SYMLINKS)
    finally:
        os.close(fd)
