"""The pod's infra process: a pid-1 reaper in a new PID namespace, only for pods whose
containers share one PID namespace (NamespaceMode POD for pid).

`start_infra` runs this module as a fresh, single-threaded interpreter (`python -m
crid.pods.infra NET IPC UTS`): it joins the pod's pinned namespaces, unshares a PID namespace
and forks; the child is pid 1 there and only reaps orphans until SIGTERM/SIGINT. The parent
prints the child's pid and exits, so the reaper is nobody's child in the daemon and outlives
it. The pid and its start time are recorded so a restarted daemon can tell it from a reused pid.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from crid.errors import Internal
from crid.pods.model import Infra

_TOP = Path(__file__).resolve().parents[2]


class InfraError(Internal):
    """The infra process could not be started or stopped."""


def start_infra(ns_paths: dict[str, str]) -> Infra:
    """Starts the reaper inside the given pinned namespaces (kind -> path; absent = host's).

    Raises:
        InfraError: the helper failed or printed no pid.
    """
    args = [sys.executable, "-S", "-m", "crid.pods.infra",
            *(ns_paths.get(k, "") for k in ("net", "ipc", "uts"))]
    env = {"PYTHONPATH": str(_TOP), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    try:
        res = subprocess.run(args, capture_output=True, text=True, timeout=30, env=env,
                             cwd="/", stdin=subprocess.DEVNULL, start_new_session=True)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise InfraError(f"starting the pod infra process: {e}") from e
    if res.returncode != 0 or not res.stdout.strip().isdigit():
        raise InfraError(f"starting the pod infra process: exit {res.returncode}: "
                         f"{res.stderr.strip()[-500:]}")
    pid = int(res.stdout.strip())
    start = process_start_time(pid)
    if start is None:
        raise InfraError(f"pod infra process {pid} died right after starting")
    return Infra(pid=pid, start_time=start)


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), None when pid is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ")".
    return int(stat.rsplit(")", 1)[1].split()[19])


def infra_alive(infra: Infra) -> bool:
    """Whether the recorded process still runs (same pid and same start time)."""
    return process_start_time(infra.pid) == infra.start_time


def stop_infra(infra: Infra, grace: float = 2.0) -> None:
    """Stops the reaper (SIGTERM, then SIGKILL); a process already gone is fine."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not infra_alive(infra):
            return
        try:
            os.kill(infra.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and infra_alive(infra):
            time.sleep(0.005)
    if infra_alive(infra):
        raise InfraError(f"pod infra process {infra.pid} survived SIGKILL")


def _reap_forever() -> None:
    signals = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    while True:
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        if signal.sigwait(signals) != signal.SIGCHLD:
            os._exit(0)


def _main(net: str, ipc: str, uts: str) -> None:
    from runtime import libc

    for path in (net, ipc, uts):
        if path:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            libc.setns(fd, 0)
            os.close(fd)
    libc.unshare(libc.CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.setsid()
        _reap_forever()
    print(pid, flush=True)
    os._exit(0)


if __name__ == "__main__":
    _main(*sys.argv[1:4])
