"""An image's merged filesystem, read-only: what COPY --from reads, and where WORKDIR and
`--chown` names are looked up.

overlayfs with lower directories only is a read-only mount; an empty directory is stacked at
the bottom so that an image of one layer (or none) mounts the same way.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from crid.build.errors import BuildError
from crid.containers.rootfs import MAX_MOUNT_DATA
from runtime.linux import libc


@contextlib.contextmanager
def merged_view(layers: list[Path], work_root: Path) -> Iterator[Path]:
    """Mount `layers` (top first) read-only under `work_root`; yields the mount point.

    Raises:
        BuildError: the mount failed.
    """
    work = Path(tempfile.mkdtemp(prefix="view-", dir=work_root))
    empty, merged = work / "empty", work / "merged"
    empty.mkdir()
    merged.mkdir()
    data = f"lowerdir={':'.join(str(p) for p in [*layers, empty])}"
    if len(data) > MAX_MOUNT_DATA:
        shutil.rmtree(work, ignore_errors=True)
        raise BuildError(f"the image has too many layers ({len(layers)}) to mount")
    try:
        libc.mount("overlay", str(merged), "overlay", libc.MS_RDONLY, data)
    except OSError as e:
        shutil.rmtree(work, ignore_errors=True)
        raise BuildError(f"mounting an image's layers for the build: {e}") from e
    try:
        yield merged
    finally:
        libc.umount2(str(merged), libc.MNT_DETACH)
        shutil.rmtree(work, ignore_errors=True)


def resolve_inside(root: Path, path: str) -> Path:
    """`path` (absolute, in the image) resolved below `root` with symlinks followed as the
    container would follow them: never above `root`.

    Raises:
        BuildError: a symlink loop.
    """
    parts = [p for p in path.split("/") if p not in ("", ".")]
    current: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if current:
                current.pop()
            continue
        candidate = root.joinpath(*current, part)
        if candidate.is_symlink():
            hops += 1
            if hops > 40:
                raise BuildError(f"too many levels of symbolic links in {path!r:.200}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        current.append(part)
    return root.joinpath(*current)
