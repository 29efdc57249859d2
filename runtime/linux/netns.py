"""Running code in another namespace without moving the caller.

setns(2) and unshare(2) move only the calling thread, and what a thread makes there (a socket,
a pinned namespace) stays in that namespace for life. A short-lived thread of its own enters,
does the work and ends, so no other code ever runs in the namespace it changed to; the result
or the exception comes back to the caller's thread. Used where a multi-threaded process (the
gRPC daemon) must not fork.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from runtime.linux import libc

T = TypeVar("T")


def in_own_thread(work: Callable[[], T], name: str = "ns-work") -> T:
    """work() run in a new thread that ends with it; its result, or its exception re-raised."""
    box: list[tuple[bool, object]] = []

    def run() -> None:
        try:
            box.append((True, work()))
        except BaseException as e:  # handed to the caller's thread
            box.append((False, e))

    t = threading.Thread(target=run, name=name, daemon=True)
    t.start()
    t.join()
    ok, value = box[0]
    if not ok:
        raise value  # type: ignore[misc]
    return value  # type: ignore[return-value]


def enter(path: str, nstype: int) -> None:
    """Moves the calling thread into the namespace at `path`. Raises OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc.setns(fd, nstype)
    finally:
        os.close(fd)


def in_netns(netns_path: str, work: Callable[[], T]) -> T:
    """work() run inside the network namespace at `netns_path`, in a thread of its own."""
    def inside() -> T:
        enter(netns_path, libc.CLONE_NEWNET)
        return work()
    return in_own_thread(inside, "netns-work")


@contextlib.contextmanager
def netns_entered(netns_path: str) -> Iterator[None]:
    """The calling thread inside `netns_path` for the block, then back in its own namespace.
    For a thread that must hand its result to an event loop rather than be joined; such a
    thread must end after the block whether or not the way back succeeded.

    Raises:
        OSError: the namespace cannot be opened or entered, or the way back failed.
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        enter(netns_path, libc.CLONE_NEWNET)
        try:
            yield
        finally:
            libc.setns(home, libc.CLONE_NEWNET)
    finally:
        os.close(home)
