"""Expected unpacked trees, and the same description read from a real directory.

A tree is `dict[path, Node]` (paths relative, no leading slash, root excluded). Two views:
- `merged_tree(layers)`: what a container sees after stacking the layers (whiteouts and opaque
  directories applied, Docker/OCI semantics);
- `overlay_layer_tree(layer)`: one layer unpacked as an overlayfs lower directory (a `.wh.x`
  marker becomes a `whiteout` node at `x` — a 0:0 char device on disk — and an opaque marker
  sets `opaque` on its directory — `trusted.overlay.opaque=y` on disk).
`scan_tree(dir)` reads a directory into the same shape, so `tree_diff(expected, scan_tree(d))`
compares byte-exact (sha256 of content), mode, owner, xattrs, link targets, devices, hard links.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path, PurePosixPath

from tests.rig.layers import (
    BLOCK,
    CHAR,
    DIR,
    FIFO,
    FILE,
    HARDLINK,
    OPAQUE_MARKER,
    SYMLINK,
    WHITEOUT_PREFIX,
    BuiltLayer,
    Entry,
)

WHITEOUT = "whiteout"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"


@dataclass(frozen=True)
class Node:
    """One path of an unpacked tree. `sha256` is set for files; `target` for symlinks;
    `rdev` (major, minor) for devices; `link_group` is the smallest path sharing the inode
    (None when the file has one name in the tree); `mtime` is compared only on request."""

    kind: str
    mode: int
    uid: int = 0
    gid: int = 0
    sha256: str | None = None
    size: int = 0
    target: str | None = None
    rdev: tuple[int, int] | None = None
    xattrs: Mapping[str, bytes] = field(default_factory=dict)
    opaque: bool = False
    link_group: str | None = None
    mtime: int | None = None


Tree = dict[str, Node]


def node_from_entry(entry: Entry) -> Node:
    """The node a non-hard-link entry unpacks to."""
    return Node(
        kind=entry.kind,
        mode=entry.mode & 0o7777,
        uid=entry.uid,
        gid=entry.gid,
        sha256=hashlib.sha256(entry.data).hexdigest() if entry.kind == FILE else None,
        size=len(entry.data) if entry.kind == FILE else 0,
        target=entry.target if entry.kind == SYMLINK else None,
        rdev=(entry.major, entry.minor) if entry.kind in (CHAR, BLOCK) else None,
        xattrs=dict(entry.xattrs),
        mtime=entry.mtime,
    )


def overlay_layer_tree(layer: BuiltLayer) -> Tree:
    """One layer as an overlayfs lower directory (see module doc)."""
    tree: Tree = {}
    opaque_dirs: set[str] = set()
    for entry in layer.entries:
        parent, name = _split(entry.path)
        if name == OPAQUE_MARKER:
            opaque_dirs.add(parent)
        elif name.startswith(WHITEOUT_PREFIX):
            tree[_join(parent, name[len(WHITEOUT_PREFIX):])] = Node(WHITEOUT, 0, rdev=(0, 0))
        elif entry.kind == HARDLINK:
            tree[entry.path] = tree[entry.target]
        else:
            tree[entry.path] = node_from_entry(entry)
    for path in opaque_dirs:
        if path in tree:
            tree[path] = replace(tree[path], opaque=True)
    return _with_link_groups(tree, layer.entries)


def merged_tree(layers: Sequence[BuiltLayer]) -> Tree:
    """The tree after stacking `layers` bottom to top, whiteouts applied."""
    tree: Tree = {}
    links: list[Entry] = []
    for layer in layers:
        markers = [e for e in layer.entries if _split(e.path)[1].startswith(WHITEOUT_PREFIX)]
        for entry in markers:
            parent, name = _split(entry.path)
            if name == OPAQUE_MARKER:
                _remove_under(tree, parent, keep_self=True)
            else:
                _remove_under(tree, _join(parent, name[len(WHITEOUT_PREFIX):]))
        for entry in layer.entries:
            if entry in markers:
                continue
            if entry.path in tree and tree[entry.path].kind == DIR and entry.kind != DIR:
                _remove_under(tree, entry.path)
            if entry.kind == HARDLINK:
                tree[entry.path] = tree[entry.target]
                links.append(entry)
            else:
                tree[entry.path] = node_from_entry(entry)
    return _with_link_groups(tree, links)


def scan_tree(root: Path) -> Tree:
    """Read a real directory (not following symlinks) into a tree."""
    tree: Tree = {}
    inodes: dict[tuple[int, int], list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = os.lstat(path)
            tree[rel] = _node_from_stat(path, st)
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
    for paths in inodes.values():
        if len(paths) > 1:
            for p in paths:
                tree[p] = replace(tree[p], link_group=min(paths))
    return tree


def tree_diff(expected: Tree, actual: Tree, check_mtime: bool = False,
              ignore_xattrs: Iterable[str] = ()) -> list[str]:
    """Readable differences, empty when equal. `ignore_xattrs` drops xattr names (e.g. ones
    the filesystem adds) from both sides; mtimes of regular files are compared on request."""
    ignored = set(ignore_xattrs)
    problems = []
    for path in sorted(set(expected) | set(actual)):
        if path not in actual:
            problems.append(f"missing: {path}")
        elif path not in expected:
            problems.append(f"unexpected: {path} ({actual[path].kind})")
        else:
            problems += _node_diff(path, expected[path], actual[path], check_mtime, ignored)
    return problems


def _node_diff(path: str, want: Node, got: Node, check_mtime: bool, ignored: set[str]) -> list[str]:
    out = []
    for f in fields(Node):
        a, b = getattr(want, f.name), getattr(got, f.name)
        if f.name == "xattrs":
            a = {k: v for k, v in a.items() if k not in ignored}
            b = {k: v for k, v in b.items() if k not in ignored}
        if f.name == "mtime" and not (check_mtime and want.kind == FILE):
            continue
        if a != b:
            out.append(f"{path}: {f.name} expected {a!r}, got {b!r}")
    return out


def _node_from_stat(path: Path, st: os.stat_result) -> Node:
    xattrs = _xattrs(path)
    is_opaque = xattrs.pop(OVERLAY_OPAQUE_XATTR, None) == b"y"
    mode = stat.S_IMODE(st.st_mode)
    common = dict(mode=mode, uid=st.st_uid, gid=st.st_gid, xattrs=xattrs, mtime=int(st.st_mtime))
    if stat.S_ISREG(st.st_mode):
        data = path.read_bytes()
        return Node(FILE, sha256=hashlib.sha256(data).hexdigest(), size=len(data), **common)  # type: ignore[arg-type]
    if stat.S_ISDIR(st.st_mode):
        return Node(DIR, opaque=is_opaque, **common)  # type: ignore[arg-type]
    if stat.S_ISLNK(st.st_mode):
        return Node(SYMLINK, target=os.readlink(path), **{**common, "mode": 0o777})  # type: ignore[arg-type]
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return Node(WHITEOUT, 0, rdev=(0, 0))
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        kind = CHAR if stat.S_ISCHR(st.st_mode) else BLOCK
        return Node(kind, rdev=(os.major(st.st_rdev), os.minor(st.st_rdev)), **common)  # type: ignore[arg-type]
    if stat.S_ISFIFO(st.st_mode):
        return Node(FIFO, **common)  # type: ignore[arg-type]
    return Node("other", **common)  # type: ignore[arg-type]


def _with_link_groups(tree: Tree, links: Iterable[Entry]) -> Tree:
    groups: dict[str, set[str]] = {}
    for entry in links:
        if entry.kind == HARDLINK:
            group = groups.setdefault(entry.target, {entry.target})
            group.add(entry.path)
    for members in groups.values():
        alive = [p for p in members if p in tree]
        if len(alive) > 1:
            for p in alive:
                tree[p] = replace(tree[p], link_group=min(alive))
    return tree


def _remove_under(tree: Tree, path: str, keep_self: bool = False) -> None:
    prefix = path + "/"
    for p in [p for p in tree if p.startswith(prefix) or (p == path and not keep_self)]:
        del tree[p]


def _split(path: str) -> tuple[str, str]:
    p = PurePosixPath(path)
    return ("" if str(p.parent) == "." else str(p.parent)), p.name


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _xattrs(path: Path) -> dict[str, bytes]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    return {n: os.getxattr(path, n, follow_symlinks=False) for n in sorted(names)}
