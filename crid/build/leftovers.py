"""What builds of a killed daemon left behind (step pods, mounts, directories under the build
root), removed at start-up. Apart from the build engine so that the daemon can clean up at
every start without importing the engine, which is loaded by the first build."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from crid import logs
from crid.build.runner import PodStepRunner, RunnerOptions
from crid.containers.manager import ContainerManager
from crid.events import EventBus
from crid.pods.manager import PodManager
from runtime.linux import libc

log = logs.get("crid.build")


def reap_builds(pods: PodManager, containers: ContainerManager, events: EventBus,
                opts: RunnerOptions) -> None:
    """Removes step pods of interrupted builds, then every mount and directory under
    `opts.work_root` (the build cache's index file stays)."""
    removed = PodStepRunner(pods, containers, events, opts).reap()
    work = opts.work_root
    if not work.is_dir():
        return
    mounts = _mounts_below(work)
    for point in mounts:
        with contextlib.suppress(OSError):
            libc.umount2(point, libc.MNT_DETACH)
    dirs = [p for p in work.iterdir() if p.is_dir() and not p.is_symlink()]
    for p in dirs:
        shutil.rmtree(p, ignore_errors=True)
    if removed or mounts or dirs:
        log.info("removed leftovers of interrupted builds", pods=removed, mounts=len(mounts),
                 dirs=len(dirs))


def _mounts_below(root: Path) -> list[str]:
    """Mount points under `root` (deepest first), from this process's mountinfo."""
    prefix = str(root.resolve()) + "/"
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            point = line.split(" ")[4].encode().decode("unicode_escape")
            if point.startswith(prefix):
                points.append(point)
    return sorted(points, key=len, reverse=True)
