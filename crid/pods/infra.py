"""The pod's infra process: pid 1 of a new PID namespace, only for pods whose containers share
one PID namespace (NamespaceMode POD for pid).

No interpreter is started, and nothing waits for it: a short-lived thread of the daemon joins
the pod's pinned network, IPC and UTS namespaces, unshare(2)s a PID namespace (which moves only
that thread's future children, so it works in the multi-threaded daemon: see
`runtime.linux.netns`) and spawns coreutils `env --ignore-signal=CHLD sleep infinity`, which is
thus pid 1 of the new namespace and the daemon's own child, reaped the moment it exits
(`crid.children.REAPER`). A pid 1 that ignores SIGCHLD has the kernel reap every orphan for
it, so a sleeping process is a complete reaper. It used to be `nsenter` + util-linux
`unshare --pid --fork`, whose waiting parent was one more process per pod for the pod's life.
A pod with a user namespace of its own still goes that way: setns(2) into a user namespace
needs a single-threaded caller.

Once the daemon restarts, the infra process is init's child. Its pid and start time are
recorded so a restarted daemon can tell it from a reused pid; it (and unshare) carries the
pod's mark (`crid.children.mark`) from its first instruction, so a daemon killed before it
recorded it finds it again.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from crid.children import REAPER
from crid.errors import Internal
from crid.pods.model import Infra
from runtime.api import wait_exit
from runtime.linux import libc
from runtime.linux.netns import enter, in_own_thread

START_TIMEOUT = 10.0
_SETNS = {"net": libc.CLONE_NEWNET, "ipc": libc.CLONE_NEWIPC, "uts": libc.CLONE_NEWUTS}


class InfraError(Internal):
    """The infra process could not be started or stopped."""


@dataclass(frozen=True)
class InfraTools:
    nsenter: str = "/usr/bin/nsenter"
    unshare: str = "/usr/bin/unshare"
    env: str = "/usr/bin/env"
    sleep: str = "/bin/sleep"


def start_infra(ns_paths: dict[str, str], marks: dict[str, str],
                tools: InfraTools = InfraTools()) -> Infra:
    """Starts the infra process inside the given pinned namespaces (kind -> path; a kind
    absent from ns_paths stays the host's), its environment carrying ``marks``.

    Raises:
        InfraError: a helper failed or the process did not appear in time.
    """
    if not set(ns_paths) <= set(_SETNS):
        return _start_with_unshare(ns_paths, marks, tools)
    try:
        proc = in_own_thread(lambda: _spawn_as_pid1(ns_paths, marks, tools), "pod-infra")
    except OSError as e:
        raise InfraError(f"starting the pod infra process: {e}") from e
    REAPER.adopt(proc)
    start = process_start_time(proc.pid)
    if start is None:
        raise InfraError(f"pod infra process {proc.pid} died right after starting")
    return Infra(pid=proc.pid, start_time=start)


def _spawn_as_pid1(ns_paths: dict[str, str], marks: dict[str, str],
                   tools: InfraTools) -> subprocess.Popen:
    """In a thread of its own that ends right after: join the namespaces, make the PID one,
    spawn its pid 1. Raises OSError."""
    for kind, path in sorted(ns_paths.items()):
        enter(path, _SETNS[kind])
    libc.unshare(libc.CLONE_NEWPID)
    return subprocess.Popen([tools.env, "--ignore-signal=CHLD", tools.sleep, "infinity"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, close_fds=True, cwd="/",
                            start_new_session=True, env={**os.environ, **marks})


def _start_with_unshare(ns_paths: dict[str, str], marks: dict[str, str],
                        tools: InfraTools) -> Infra:
    """`nsenter` into the namespaces (a user namespace among them) execs `unshare --pid
    --fork`, which stays as the infra process's waiting parent."""
    enter = [tools.nsenter, *(f"--{k}={p}" for k, p in sorted(ns_paths.items())), "--"] \
        if ns_paths else []
    args = [*enter, tools.unshare, "--pid", "--fork", "--", tools.env, "--ignore-signal=CHLD",
            tools.sleep, "infinity"]
    try:
        helper = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, close_fds=True, cwd="/",
                                  start_new_session=True, env={**os.environ, **marks})
    except OSError as e:
        raise InfraError(f"starting the pod infra process: {e}") from e
    REAPER.adopt(helper)  # unshare ends with the infra process: reaped then, not later
    pid = _wait_for_child(helper)
    start = process_start_time(pid)
    if start is None:
        raise InfraError(f"pod infra process {pid} died right after starting")
    helper.stderr.close()  # type: ignore[union-attr]
    return Infra(pid=pid, start_time=start)


def _wait_for_child(helper: subprocess.Popen) -> int:
    children = Path(f"/proc/{helper.pid}/task/{helper.pid}/children")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if helper.poll() is not None:
            err = helper.stderr.read().decode(errors="replace") if helper.stderr else ""
            raise InfraError(f"starting the pod infra process: exit {helper.returncode}: "
                             f"{err.strip()[-500:]}")
        try:
            kids = children.read_text().split()
        except OSError:
            kids = []
        if kids:
            return int(kids[0])
        time.sleep(0.0005)
    helper.kill()
    raise InfraError(f"pod infra process did not start within {START_TIMEOUT}s")


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), None when pid is gone or a
    zombie (dead, waiting for whoever adopted it to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ")".
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else int(fields[19])


def infra_alive(infra: Infra) -> bool:
    """Whether the recorded process still runs (same pid and same start time)."""
    return process_start_time(infra.pid) == infra.start_time


def stop_infra(infra: Infra, grace: float = 5.0) -> None:
    """Kills the infra process (SIGKILL: as pid 1 without handlers it ignores every other
    signal, and it holds no state); a process already gone is fine.

    Raises:
        InfraError: it is still there after `grace` seconds.
    """
    if not infra_alive(infra):
        return
    parent = _parent(infra.pid)
    try:
        os.kill(infra.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    # Woken by its pidfd. Its parent, unshare, reaps it at once and exits: waited for too,
    # so nothing of the pod outlives its removal (reaped here, or by init after a daemon
    # restart).
    if not wait_exit(infra.pid, infra.start_time, grace):
        raise InfraError(f"pod infra process {infra.pid} survived SIGKILL")
    if parent is not None and not REAPER.wait(parent[0], grace):
        wait_exit(*parent, grace)
    REAPER.wait(infra.pid, grace)  # the daemon's own child (not after a restart): reaped


def _parent(pid: int) -> tuple[int, int] | None:
    """(pid, start time) of the infra process's unshare; None if that is not its parent."""
    try:
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        comm = Path(f"/proc/{ppid}/comm").read_text().strip()
    except (OSError, ValueError, IndexError):
        return None
    start = process_start_time(ppid)
    return (ppid, start) if comm == "unshare" and start is not None else None
