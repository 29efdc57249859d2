"""The build context: a client's tar archive, checked and unpacked into a directory of crid's.

The archive is hostile until checked: absolute names, `..`, links that point out of the context,
devices, and more than `limit` bytes of content are refused with BuildError before anything of
it is used; it may be plain, gzip, bzip2 or xz (what `docker build` and docker-py send).
"""

from __future__ import annotations

import posixpath
import tarfile
from pathlib import Path
from typing import BinaryIO

from crid.build.errors import BuildError

DEFAULT_LIMIT = 8 << 30


def unpack_context(stream: BinaryIO, dest: Path, limit: int = DEFAULT_LIMIT) -> None:
    """Extract the context archive read from `stream` into the empty directory `dest`.

    Raises:
        BuildError: not a tar, an unsafe entry, or over `limit` bytes.
    """
    total = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                _check(member)
                total += member.size
                if total > limit:
                    raise BuildError(f"build context is larger than {limit} bytes")
                tar.extract(member, dest, filter=_keep_modes)
    except tarfile.ReadError as e:
        raise BuildError(f"build context is not a tar archive: {e}") from None
    except (tarfile.TarError, EOFError) as e:
        raise BuildError(f"build context archive is corrupt: {e}") from None


def _check(m: tarfile.TarInfo) -> None:
    name = m.name
    if name.startswith("/") or "\0" in name:
        raise BuildError(f"build context entry {name!r:.200} is an absolute path")
    if ".." in name.split("/"):
        raise BuildError(f"build context entry {name!r:.200} points outside the context")
    if m.isdev():
        raise BuildError(f"build context entry {name!r:.200} is a device")
    if m.issym():
        target = m.linkname
        base = posixpath.dirname(name)
        if target.startswith("/") or _escapes(posixpath.join(base, target)):
            raise BuildError(f"build context symlink {name!r:.200} points outside the context "
                             f"({target!r:.200})")
    if m.islnk() and (m.linkname.startswith("/") or _escapes(m.linkname)):
        raise BuildError(f"build context hard link {name!r:.200} points outside the context")


def _escapes(path: str) -> bool:
    depth = 0
    for part in path.split("/"):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


def _keep_modes(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """tarfile's `tar` filter (no absolute or escaping paths, no setuid) keeping ownership as
    root: the context's files belong to the build, COPY sets their owner itself."""
    checked = tarfile.tar_filter(member, dest)
    return checked.replace(uid=0, gid=0, uname="", gname="", deep=False)
