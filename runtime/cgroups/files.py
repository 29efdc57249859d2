"""Reading and writing cgroup interface files, with errors that name file, value and field."""

from __future__ import annotations

import errno
import os
import time

from runtime.cgroups.errors import CgroupError


def write(directory: str, name: str, value: str | int, field: str = "") -> None:
    """Write ``value`` to ``directory/name`` in one write(2), as the kernel expects.

    Raises:
        CgroupError: naming the OCI field (when given), the file, the value and the errno.
    """
    path = os.path.join(directory, name)
    data = str(value).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(_msg(field, f"opening {path} to write {value!r}: {e.strerror}")) from e
    try:
        os.write(fd, data)
    except OSError as e:
        raise CgroupError(_msg(field, f"writing {value!r} to {path}: {e.strerror}")) from e
    finally:
        os.close(fd)


def _msg(field: str, text: str) -> str:
    return f"{field}: {text}" if field else text


def read(directory: str, name: str) -> str:
    """The file's text, stripped. Raises CgroupError naming the file."""
    path = os.path.join(directory, name)
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        raise CgroupError(f"reading {path}: {e.strerror}") from e


def read_opt(directory: str, name: str) -> str | None:
    """Like ``read`` but None when the file does not exist (an optional kernel feature)."""
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CgroupError(f"reading {os.path.join(directory, name)}: {e.strerror}") from e


def read_int(directory: str, name: str, default: int | None = None) -> int | None:
    """An integer file; ``max`` (v2) gives None, a missing file ``default``."""
    text = read_opt(directory, name)
    if text is None or text == "":
        return default
    if text == "max":
        return None
    return int(text.split()[0])


def read_keyed(directory: str, name: str) -> dict[str, int]:
    """A flat keyed file (``memory.stat``, ``cpu.stat``): {key: int}; {} when missing."""
    out: dict[str, int] = {}
    for line in (read_opt(directory, name) or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def exists(directory: str, name: str) -> bool:
    return os.path.exists(os.path.join(directory, name))


def read_procs(directory: str, recursive: bool = True) -> list[int]:
    """PIDs in ``cgroup.procs`` of the directory and, if recursive, of every descendant."""
    pids: list[int] = []
    walk = os.walk(directory) if recursive else [(directory, [], [])]
    for d, _, _ in walk:
        text = read_opt(d, "cgroup.procs")
        pids += [int(x) for x in (text or "").split()]
    return sorted(set(pids))


def remove_tree(directory: str, attempts: int = 8) -> None:
    """rmdir the directory and its sub-cgroups bottom-up; retry briefly while EBUSY (the
    kernel frees a cgroup shortly after its last process is reaped). Never kills anything.

    Raises:
        CgroupError: a directory is still busy (processes left) after the retries.
    """
    try:
        os.rmdir(directory)  # the usual case, no sub-cgroups: no walk over the interface files
        return
    except FileNotFoundError:
        return
    except OSError:
        pass  # sub-cgroups or processes (EBUSY), or not a directory: the walk sorts it out
    delay = 0.01
    for attempt in range(attempts):
        try:
            for d, _, _ in sorted(os.walk(directory), key=lambda w: -w[0].count("/")):
                try:
                    os.rmdir(d)
                except FileNotFoundError:
                    pass
            return
        except OSError as e:
            if e.errno != errno.EBUSY or attempt == attempts - 1:
                raise CgroupError(f"removing cgroup {e.filename or directory}: {e.strerror} "
                                  f"(processes: {read_procs(directory)})") from e
            time.sleep(delay)
            delay *= 2
