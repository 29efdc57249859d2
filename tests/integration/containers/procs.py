"""Which processes belong to one test daemon: its descendants and every process marked with its
run root (crid.children: the zygote and all it forks, pod holders), and which of their children
are zombies. Only this daemon's are counted: other sessions run daemons on this machine too."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from crid.children import OWNER, POD
from tests.rig.daemon import CridProcess


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str
    comm: str


def all_processes() -> dict[int, Proc]:
    procs = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        head, _, rest = stat.rpartition(")")
        fields = rest.split()
        procs[int(name)] = Proc(int(name), int(fields[1]), fields[0],
                                head.partition("(")[2])
    return procs


def _environ(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []


def marked(run_root: Path, procs: dict[int, Proc] | None = None) -> dict[int, Proc]:
    """Live processes carrying the daemon's mark."""
    owner = f"{OWNER}={run_root}".encode()
    procs = all_processes() if procs is None else procs
    return {p: v for p, v in procs.items() if owner in _environ(p)}


def holders(run_root: Path) -> dict[int, Proc]:
    """Marked processes of a pod (its infra process and unshare)."""
    return {p: v for p, v in marked(run_root).items()
            if any(e.startswith(POD.encode() + b"=") for e in _environ(p))}


def daemon_tree(daemon: CridProcess) -> dict[int, Proc]:
    """The daemon's descendants, and every process marked with its run root with theirs."""
    procs = all_processes()
    tree = {daemon.proc.pid: procs[daemon.proc.pid]} if daemon.proc.pid in procs else {}
    tree.update(marked(daemon.run_root, procs))
    grew = True
    while grew:
        found = {p: v for p, v in procs.items() if v.ppid in tree and p not in tree}
        tree.update(found)
        grew = bool(found)
    return tree


def strays(daemon: CridProcess) -> dict[int, Proc]:
    """Processes marked with the daemon's run root that are not its descendants: a previous
    daemon's, which the running one did not end (pod holders of removed pods included)."""
    procs = all_processes()
    ours = {daemon.proc.pid}
    grew = True
    while grew:
        found = {p for p, v in procs.items() if v.ppid in ours and p not in ours}
        ours |= found
        grew = bool(found)
    return {p: v for p, v in marked(daemon.run_root, procs).items() if p not in ours}


def zombies(daemon: CridProcess) -> list[Proc]:
    """Zombie children of the daemon, its zygote, monitors and holders."""
    return [p for p in daemon_tree(daemon).values() if p.state == "Z"]


def with_arg(arg: str) -> list[int]:
    """Pids whose command line has ``arg`` as one of its words."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                words = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if arg.encode() in words:
                found.append(int(name))
    return found


def leaving_a_child() -> tuple[tuple[str, ...], str]:
    """The usual shell workload, which leaves its `sleep` behind when it ends, with a sleep
    length of its own (to find its processes among everyone's): (command, the length)."""
    seconds = str(86400 + secrets.randbelow(10**6))
    return ("/bin/sh", "-c", f"trap 'exit 0' TERM; sleep {seconds} & wait"), seconds
