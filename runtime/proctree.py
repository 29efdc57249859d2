"""Killing a process together with everything it started, and waiting until all are reaped.

An exec'd probe that times out leaves children behind (``sh -c 'sleep 600 & sleep 600'``);
killing only its pid orphans them to the container's init. The tree is read from
``/proc/<pid>/task/<tid>/children`` and stopped first (a stopped process cannot fork), read
again until no new process shows up, then killed; processes are named by (pid, start time) so
a reused pid is never signalled or waited for.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from runtime.state import process_start_time

Proc = tuple[int, int]  # pid, start time in clock ticks since boot


def _present(pid: int, start: int) -> bool:
    """Whether the process is still there, zombies included (pgrep lists zombies)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return int(fields[19]) == start


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
    return out


def tree(pid: int) -> list[Proc]:
    """pid and its live descendants, parents before children."""
    found: list[Proc] = []
    todo = [pid]
    while todo:
        p = todo.pop(0)
        start = process_start_time(p)
        if start is None or any(q == p for q, _ in found):
            continue
        found.append((p, start))
        todo += _children(p)
    return found


def _signal(procs: list[Proc], sig: int) -> None:
    for pid, start in procs:
        if process_start_time(pid) == start:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def kill_tree(pid: int, rounds: int = 20) -> list[Proc]:
    """SIGKILL pid, its process group and all its descendants; the processes signalled."""
    procs: list[Proc] = []
    for _ in range(rounds):
        now = tree(pid) if not procs else _merge(procs, [q for p in procs for q in tree(p[0])])
        fresh = [p for p in now if p not in procs]
        procs = now
        if not fresh:
            break
        _signal(fresh, signal.SIGSTOP)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    _signal(procs, signal.SIGKILL)
    _signal(procs, signal.SIGCONT)  # a stopped process takes SIGKILL anyway; harmless
    return procs


def _merge(a: list[Proc], b: list[Proc]) -> list[Proc]:
    return a + [p for p in b if p not in a]


def wait_gone(procs: list[Proc], timeout: float) -> bool:
    """Wait until each process is reaped by its parent (zombies count as alive: pgrep sees
    them); whether all went within timeout."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in procs if _present(*p)]
        if not left:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
