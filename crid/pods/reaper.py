"""The pod infra process, run as a script (`python -S reaper.py NET IPC UTS`) so that it
imports nothing of crid: it joins the pod's pinned namespaces (empty argument = the host's),
unshares a PID namespace and forks; the child is pid 1 there and only reaps orphans until
SIGTERM/SIGINT. The parent prints the child's host pid and exits. Single-threaded throughout.
"""

from __future__ import annotations

import os
import signal
import sys


def _reap_forever() -> None:
    signals = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}
    # pid 1 of a PID namespace gets no signal it has no handler for, even from the parent
    # namespace (pid_namespaces(7)): install handlers, then block and sigwait.
    for sig in signals:
        signal.signal(sig, lambda *_: None)
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


def main(net: str, ipc: str, uts: str) -> None:
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
    main(*sys.argv[1:4])
