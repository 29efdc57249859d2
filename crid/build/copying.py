"""COPY and ADD: the files a step adds, staged in a directory that becomes the step's layer.

Sources are paths (wildcards allowed) inside a source root: the build context, or another
stage's or image's merged filesystem (`--from`). Docker's rules for the destination hold: a
destination ending in `/`, or one that is a directory in the image, receives sources by name;
a directory source gives its contents; several sources need a directory destination. New
files and directories belong to 0:0 unless `--chown`; parents that exist in the image keep
their metadata in the layer. ADD unpacks local tar archives (plain, gzip, bzip2, xz).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from crid.build.errors import BuildError
from crid.build.view import resolve_inside
from crid.containers.users import UserDB

_GLOB = set("*?[")
_ARCHIVE_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")


@dataclass(frozen=True)
class CopySpec:
    sources: tuple[str, ...]  # expanded, relative to the source root
    dest: str  # expanded, absolute (WORKDIR applied)
    owner: tuple[int, int] = (0, 0)
    mode: int | None = None  # --chmod
    unpack_archives: bool = False  # ADD


def parse_chown(text: str, users: UserDB) -> tuple[int, int]:
    """`--chown=user[:group]` as ids, names looked up in the image's passwd and group.

    Raises:
        BuildError: an unknown name.
    """
    user, _, group = text.partition(":")
    uid = _id(user, users, "user")
    if group:
        return uid, _id(group, users, "group")
    entry = users.user(uid)
    return uid, entry.gid if entry and not user.isdigit() else uid


def _id(text: str, users: UserDB, kind: str) -> int:
    if text.isdigit():
        return int(text)
    entry = users.user(text) if kind == "user" else users.group(text)
    if entry is None:
        raise BuildError(f"unable to convert {kind} {text!r:.80} to an id: no such {kind} in "
                         f"the image's /etc/{'passwd' if kind == 'user' else 'group'}")
    return entry.uid if kind == "user" else entry.gid  # type: ignore[union-attr]


def stage_copy(spec: CopySpec, source_root: Path, image_root: Path, staging: Path,
               what: str) -> None:
    """Copy the sources into `staging` (the layer under construction), as the image's
    `image_root` (merged, read-only) decides for existing directories.

    Raises:
        BuildError: no source matched, a source outside the root, a bad destination.
    """
    found = [m for s in spec.sources for m in _matches(source_root, s, what)]
    many = len(found) > 1 or any(_GLOB & set(s) for s in spec.sources)
    into_dir = spec.dest.endswith("/") or _is_dir(image_root, spec.dest)
    if many and not into_dir:
        raise BuildError(f"{what}: when using {what} with more than one source file, the "
                         "destination must be a directory and end with a /")
    for src in found:
        if spec.unpack_archives and src.is_file() and _is_archive(src):
            target = _prepare(staging, image_root, spec.dest, spec.owner)
            _unpack(src, target, what)
        elif src.is_dir():
            target = _prepare(staging, image_root, spec.dest, spec.owner)
            _copy_tree(src, target, spec)
        else:
            dest = spec.dest.rstrip("/") + "/" + src.name if into_dir else spec.dest
            parent = _prepare(staging, image_root, os.path.dirname(dest) or "/", spec.owner)
            _copy_entry(src, parent / os.path.basename(dest), spec)


def _matches(root: Path, pattern: str, what: str) -> list[Path]:
    clean = os.path.normpath("/" + pattern).lstrip("/")
    if not (_GLOB & set(clean)):
        path = resolve_inside(root, clean)
        if not os.path.lexists(path):
            raise BuildError(f"{what} failed: file not found in build context or excluded by "
                             f".dockerignore: stat {pattern}: file does not exist")
        return [path]
    hits = sorted(_glob(root, clean.split("/") if clean else []))
    if not hits:
        raise BuildError(f"{what} failed: no source files were specified ({pattern!r:.120} "
                         "matches nothing)")
    return hits


def _glob(root: Path, parts: list[str]) -> Iterator[Path]:
    if not parts:
        yield root
        return
    head, rest = parts[0], parts[1:]
    if not root.is_dir() or root.is_symlink():
        return
    names = sorted(os.listdir(root)) if _GLOB & set(head) else [head]
    for name in names:
        if fnmatch.fnmatchcase(name, head) and os.path.lexists(root / name):
            yield from _glob(root / name, rest)


def _is_dir(image_root: Path, dest: str) -> bool:
    return resolve_inside(image_root, dest).is_dir()


def _prepare(staging: Path, image_root: Path, dest_dir: str, owner: tuple[int, int]) -> Path:
    """`dest_dir` made in the staging tree; parents the image has keep its metadata."""
    current = staging
    image_path = "/"
    for part in [p for p in dest_dir.split("/") if p]:
        image_path = os.path.join(image_path, part)
        current = current / part
        if current.is_dir():
            continue
        existing = resolve_inside(image_root, image_path)
        current.mkdir()
        if existing.is_dir():
            st = existing.stat()
            os.chown(current, st.st_uid, st.st_gid)
            os.chmod(current, stat.S_IMODE(st.st_mode))
            os.utime(current, ns=(st.st_atime_ns, st.st_mtime_ns))
        else:
            os.chown(current, *owner)
            os.chmod(current, 0o755)
    return current


def _copy_tree(src: Path, target: Path, spec: CopySpec) -> None:
    for entry in sorted(os.scandir(src), key=lambda e: e.name):
        _copy_entry(Path(entry.path), target / entry.name, spec)
    shutil.copystat(src, target, follow_symlinks=False)
    _own(target, spec, is_dir=True)


def _copy_entry(src: Path, dest: Path, spec: CopySpec) -> None:
    if dest.is_dir() and not dest.is_symlink() and not src.is_dir():
        shutil.rmtree(dest)
    elif os.path.lexists(dest) and not dest.is_dir():
        dest.unlink()
    if src.is_symlink():
        os.symlink(os.readlink(src), dest)
        os.lchown(dest, *spec.owner)
    elif src.is_dir():
        dest.mkdir(exist_ok=True)
        _copy_tree(src, dest, spec)
    elif src.is_file():
        shutil.copy2(src, dest, follow_symlinks=False)
        _own(dest, spec, is_dir=False)
    # sockets, fifos and devices in a context are not copied, as Docker does not


def _own(path: Path, spec: CopySpec, is_dir: bool) -> None:
    os.chown(path, *spec.owner, follow_symlinks=False)
    if spec.mode is not None:
        os.chmod(path, spec.mode)


def _is_archive(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(262)
    return head.startswith(_ARCHIVE_MAGIC) or head[257:262] == b"ustar"


def _unpack(src: Path, target: Path, what: str) -> None:
    try:
        with tarfile.open(src, mode="r:*") as tar:
            tar.extractall(target, filter="tar")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BuildError(f"{what}: unpacking {src.name!r:.120}: {e}") from None


def tree_digest(root: Path) -> str:
    """A digest of what the staged tree holds (names, types, modes, owners, contents, link
    targets; not times): the cache key of a COPY or ADD, as Docker's file checksums are."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            h.update(f"{rel}\0{st.st_mode:o}\0{st.st_uid}:{st.st_gid}\0".encode())
            if stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(path).encode() + b"\0")
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    while chunk := f.read(1 << 20):
                        h.update(chunk)
            h.update(b"\n")
    return h.hexdigest()
