"""Freezer states and the wait for the kernel to finish freezing."""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable

from runtime.cgroups.errors import CgroupError

FREEZE_TIMEOUT_S = 5.0


class FreezerState(enum.Enum):
    THAWED = "THAWED"
    FREEZING = "FREEZING"
    FROZEN = "FROZEN"


def wait_frozen(state: Callable[[], FreezerState], retry: Callable[[], None], where: str,
                timeout: float = FREEZE_TIMEOUT_S) -> None:
    """Poll ``state`` until FROZEN; ``retry`` re-requests the freeze now and then (v1 can stay
    FREEZING when a task forks while freezing, runc does the same).

    Raises:
        CgroupError: still not frozen after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        if state() is FreezerState.FROZEN:
            return
        if time.monotonic() > deadline:
            raise CgroupError(f"freezing {where}: still not frozen after {timeout:.0f}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
        if delay == 0.05:
            retry()


def signal_frozen(freeze: Callable[[], None], thaw: Callable[[], None],
                  pids: Callable[[], list[int]], sig: int) -> None:
    """Send ``sig`` to every process while the cgroup is frozen, so none can fork a child the
    loop would miss; the signals are delivered on thaw (SIGKILL even to frozen tasks)."""
    freeze()
    try:
        for pid in pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    finally:
        thaw()

