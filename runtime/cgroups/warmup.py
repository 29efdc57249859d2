"""Start the kernel's wait for a cgroup migration early, so the real one does not wait.

Every cgroup migration (a write to ``cgroup.procs``) takes the global
``cgroup_threadgroup_rwsem`` for writing, and the first writer after a quiet spell waits for an
RCU grace period (``rcu_sync_enter``, milliseconds; later writers within a grace
period of the last one pass at once). Placing a new container in its cgroup is such a first
writer. ``warm_up_migration`` makes the caller a writer first, by "moving" itself into the
cgroup it is already in (a no-op for the kernel's accounting): a process with nothing else
to do while the container's set-up runs elsewhere (the monitor, waiting for its spawner
child) calls it, and the grace period elapses in parallel with that set-up.
"""

from __future__ import annotations

import os

_ROOT = b"/sys/fs/cgroup"


def warm_up_migration() -> None:
    """Write ``0`` (this process) to the ``cgroup.procs`` of one of its own cgroups.

    Best effort: blocks for the grace period at most, never raises, changes nothing.
    """
    for path in _candidates():
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            os.write(fd, b"0")
        except OSError:
            pass  # refused (e.g. a v2 inner node), but the lock, and the wait, were taken
        finally:
            os.close(fd)
        return


def _candidates() -> list[bytes]:
    """cgroup.procs files of our own cgroups, the controller-less cgroup2 first (cheapest)."""
    try:
        with open("/proc/self/cgroup", "rb") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    first: list[bytes] = []
    rest: list[bytes] = []
    for line in lines:
        parts = line.split(b":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == b"0":  # cgroup2: hybrid hosts mount it at unified/
            first += [_ROOT + b"/unified" + path + b"/cgroup.procs",
                      _ROOT + path + b"/cgroup.procs"]
        elif controllers:
            name = controllers.split(b",")[0].removeprefix(b"name=")
            rest.append(_ROOT + b"/" + name + path + b"/cgroup.procs")
    return first + rest
