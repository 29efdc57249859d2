"""Container sizes as Docker reports them (`docker ps --size`, inspect `?size=1`): SizeRw is
the apparent size of what the container wrote (its overlayfs upper directory: file sizes,
hard links once, as Docker's directory.Size sums them), SizeRootFs that plus its image."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Any

from crid.docker.containers_view import DockerContainer
from crid.docker.deps import DockerDeps


def written_bytes(upper: Path) -> int:
    """Apparent bytes below `upper`, never following a symlink or leaving its filesystem."""
    try:
        dev = os.lstat(upper).st_dev
    except OSError:
        return 0
    seen: set[int] = set()
    total, stack = 0, [str(upper)]
    while stack:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as entries:
            for e in entries:
                st = e.stat(follow_symlinks=False)
                if st.st_dev != dev:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(e.path)
                    continue
                if st.st_nlink > 1:
                    if st.st_ino in seen:
                        continue
                    seen.add(st.st_ino)
                total += st.st_size
    return total


def sizes(d: DockerDeps, c: DockerContainer) -> dict[str, Any]:
    """{"SizeRw": ..., "SizeRootFs": ...} of the container (0 without a CRI container)."""
    if c.record is None or not c.record.bundle:
        return {"SizeRw": 0, "SizeRootFs": 0}
    rw = written_bytes(Path(c.record.bundle) / "upper")
    image = d.images.status(c.record.image_id)
    return {"SizeRw": rw, "SizeRootFs": rw + (image.size if image is not None else 0)}
