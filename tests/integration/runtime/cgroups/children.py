"""Test processes started straight into a cgroup, and their cleanup."""

from __future__ import annotations

import os
import signal

from runtime.cgroups import CgroupManager, FreezerState


class Children:
    """Processes a test starts, each held until it has been moved into the cgroup."""

    def __init__(self, cg: CgroupManager) -> None:
        self.cg = cg
        self.pids: list[int] = []

    def spawn(self, *argv: str) -> int:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(w)
            os.read(r, 1)  # wait until the parent has put us in the cgroup
            try:
                os.execv(argv[0], list(argv))
            finally:
                os._exit(127)
        os.close(r)
        self.pids.append(pid)
        self.cg.apply(pid)
        os.write(w, b"x")
        os.close(w)
        return pid

    def wait(self, pid: int) -> int:
        _, status = os.waitpid(pid, 0)
        self.pids.remove(pid)
        return status

    def kill_all(self) -> None:
        """SIGKILL our children and whatever they forked inside the test's cgroup."""
        if self.cg.exists() and self.cg.state() is not FreezerState.THAWED:
            self.cg.thaw()
        for pid in set(self.pids) | set(self.cg.pids() if self.cg.exists() else []):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in list(self.pids):
            self.wait(pid)
