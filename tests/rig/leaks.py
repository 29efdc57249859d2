"""Leak counters for one test daemon: its processes (its descendants and every process marked
with its run root, crid.children: the zygote and all it forks, pod holders), their zombies,
the processes in and the directories of the cgroups under a test's cgroup parent. Only this
daemon's and this parent's are counted: other sessions run daemons on this machine too.

`Leaks.of(daemon, parent)` takes them all at once, for a fixture's teardown (`assert
leaks.of(...) == Leaks()` once every pod is removed) or a before/after comparison."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from crid.children import OWNER, POD
from runtime.cgroups import read_mounts
from tests.rig.daemon import CridProcess

# Every hierarchy pod and container cgroups are made in: the v1 controllers, name=systemd and
# a hybrid host's cgroup2 too (a leak there is a leak as well).
CGROUP_ROOTS = sorted({Path(m.mountpoint) for m in read_mounts()})


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


def cgroups_under(parent: str) -> list[str]:
    """Every cgroup directory below ``parent`` (not itself) in every hierarchy."""
    found = []
    for root in CGROUP_ROOTS:
        base = root / parent.lstrip("/")
        if base.is_dir():
            found += [str(p) for p in base.rglob("*") if p.is_dir()]
    return found


def processes_in_cgroups(parent: str) -> dict[int, str]:
    """pid -> cgroup directory of every process in a cgroup at or below ``parent``."""
    found = {}
    for root in CGROUP_ROOTS:
        base = root / parent.lstrip("/")
        for d in [base, *base.rglob("*")] if base.is_dir() else []:
            try:
                pids = (d / "cgroup.procs").read_text().split()
            except OSError:  # removed meanwhile, or not a directory
                continue
            found.update({int(p): str(d) for p in pids})
    return found


@dataclass(frozen=True)
class Leaks:
    """What is left of a test daemon's work; ``Leaks()`` is nothing."""

    zombies: tuple[Proc, ...] = ()
    strays: tuple[Proc, ...] = ()  # marked processes no longer the daemon's descendants
    cgroup_processes: tuple[int, ...] = ()
    cgroup_dirs: tuple[str, ...] = ()

    @classmethod
    def of(cls, daemon: CridProcess | None, parent: str) -> Leaks:
        """The leaks of ``daemon`` (None: it is stopped, every marked process of
        ``run_root`` counts) and of the cgroups under ``parent``."""
        return cls(zombies=tuple(zombies(daemon)) if daemon is not None else (),
                   strays=tuple(strays(daemon).values()) if daemon is not None else (),
                   cgroup_processes=tuple(sorted(processes_in_cgroups(parent))),
                   cgroup_dirs=tuple(cgroups_under(parent)))

    @classmethod
    def after_stop(cls, run_root: Path, parent: str) -> Leaks:
        """The leaks of a stopped daemon: every process still marked with its run root
        (nothing of it may outlive it once its pods are removed), and the cgroups."""
        return cls(strays=tuple(marked(run_root).values()),
                   cgroup_processes=tuple(sorted(processes_in_cgroups(parent))),
                   cgroup_dirs=tuple(cgroups_under(parent)))
