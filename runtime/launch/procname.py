"""Naming a process in ps/top (its comm); the cmdline still reads as it did."""

from __future__ import annotations

import os


def set_comm(name: str) -> None:
    """Write ``name`` (15 bytes are kept) to /proc/self/comm; best effort.

    Plain fd calls: a text-mode ``open`` runs through io's and codecs' objects, and in a
    monitor every page touched becomes its own copy (see ``monitor.handoff.set_up_in_child``)."""
    try:
        fd = os.open("/proc/self/comm", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, name.encode())
    except OSError:
        pass
    finally:
        os.close(fd)
