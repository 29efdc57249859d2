"""One pass over a cgroup's usage files: each file read once, with plain fd reads.

The kubelet scrapes every container every 10 s; the interface files it needs are few (v1:
cpuacct.usage, memory.usage_in_bytes, memory.limit_in_bytes, memory.stat,
memory.memsw.usage_in_bytes, pids.current; v2: cpu.stat, memory.current, memory.max,
memory.stat, memory.swap.current, pids.current). `CgroupDirs` keeps each hierarchy's directory
open, so a sample is an openat, one read and a close per file: no path walk, no
/proc/self/mountinfo, no text-mode file object.

A removed cgroup's directory fd stays valid but every openat in it fails with ENOENT: a sample
of a gone cgroup is None, and its caller closes the dirs.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

_V1_UNLIMITED = 1 << 62  # memory.limit_in_bytes reports PAGE_COUNTER_MAX * page size
_READ_SIZE = 64 * 1024  # memory.stat is ~1.5 KiB; a seq_file returns it in one read
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_CLOEXEC
V1_CONTROLLERS = ("cpuacct", "memory", "pids")


@dataclass(frozen=True)
class RawSample:
    """What one pass read; sizes in bytes, CPU in ns; limit 0 means unlimited."""

    timestamp_ns: int
    cpu_ns: int
    memory_usage: int
    working_set: int
    rss: int
    limit: int
    page_faults: int
    major_page_faults: int
    swap: int
    processes: int


class CgroupDirs:
    """Open directory fds of one cgroup: {controller: fd} on v1, {"": fd} on v2."""

    def __init__(self, version: int, fds: dict[str, int]) -> None:
        self.version = version
        self.fds = fds

    @classmethod
    def open(cls, version: int, dirs: dict[str, str]) -> CgroupDirs | None:
        """The cgroup's directories (`CgroupManager.dirs()`) opened; None when the cgroup does
        not exist (no hierarchy has its directory)."""
        wanted = V1_CONTROLLERS if version == 1 else ("",)
        fds: dict[str, int] = {}
        for controller in wanted:
            path = dirs.get(controller)
            if not path:
                continue
            try:
                fds[controller] = os.open(path, _DIR_FLAGS)
            except OSError:
                continue  # not mounted here, or gone: that controller reads as zeros
        if not fds:
            return None
        return cls(version, fds)

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}

    def sample(self) -> RawSample | None:
        """One pass over the usage files; None when the cgroup has been removed."""
        return _v1(self.fds) if self.version == 1 else _v2(self.fds.get(""))


def _read(dir_fd: int | None, name: str) -> bytes | None:
    if dir_fd is None:
        return None
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None  # a controller's optional file (memsw without swap accounting), or gone
    try:
        data = os.read(fd, _READ_SIZE)
        while len(data) % _READ_SIZE == 0 and data:  # longer than one read: rare, finish it
            more = os.read(fd, _READ_SIZE)
            if not more:
                break
            data += more
        return data
    except OSError:
        return None
    finally:
        os.close(fd)


def _int(data: bytes | None) -> int:
    if not data:
        return 0
    word = data.split(None, 1)[0]
    return int(word) if word.isdigit() else 0


def _keyed(data: bytes | None, keys: tuple[bytes, ...]) -> dict[bytes, int]:
    """The values of `keys` in a flat keyed file (memory.stat, cpu.stat); missing keys are 0."""
    words = data.split() if data else []
    found = dict(zip(words[::2], words[1::2], strict=False))
    return {k: int(found[k]) if found.get(k, b"").isdigit() else 0 for k in keys}


_V1_STAT = (b"total_inactive_file", b"total_rss", b"total_pgfault", b"total_pgmajfault",
            b"total_swap")


def _v1(fds: dict[str, int]) -> RawSample | None:
    mem, acct = fds.get("memory"), fds.get("cpuacct")
    ts = time.time_ns()
    cpu = _read(acct, "cpuacct.usage")
    usage = _read(mem, "memory.usage_in_bytes")
    if cpu is None and usage is None:
        return None
    used = _int(usage)
    st = _keyed(_read(mem, "memory.stat"), _V1_STAT)
    limit = _int(_read(mem, "memory.limit_in_bytes"))
    memsw = _read(mem, "memory.memsw.usage_in_bytes")
    swap = max(0, _int(memsw) - used) if memsw is not None else st[b"total_swap"]
    return RawSample(
        timestamp_ns=ts, cpu_ns=_int(cpu), memory_usage=used,
        working_set=max(0, used - st[b"total_inactive_file"]), rss=st[b"total_rss"],
        limit=0 if limit >= _V1_UNLIMITED else limit, page_faults=st[b"total_pgfault"],
        major_page_faults=st[b"total_pgmajfault"], swap=swap,
        processes=_int(_read(fds.get("pids"), "pids.current")))


_V2_STAT = (b"inactive_file", b"anon", b"pgfault", b"pgmajfault")


def _v2(fd: int | None) -> RawSample | None:
    ts = time.time_ns()
    cpu = _read(fd, "cpu.stat")
    if cpu is None:
        return None
    used = _int(_read(fd, "memory.current"))
    st = _keyed(_read(fd, "memory.stat"), _V2_STAT)
    return RawSample(
        timestamp_ns=ts, cpu_ns=_keyed(cpu, (b"usage_usec",))[b"usage_usec"] * 1000,
        memory_usage=used, working_set=max(0, used - st[b"inactive_file"]), rss=st[b"anon"],
        limit=_int(_read(fd, "memory.max")), page_faults=st[b"pgfault"],
        major_page_faults=st[b"pgmajfault"], swap=_int(_read(fd, "memory.swap.current")),
        processes=_int(_read(fd, "pids.current")))
