"""The hand-off between a monitor's throwaway set-up child and the monitor itself: the fork
with a seqpacket channel, the NUL-separated words and the fds the child sends (``handoff_words``,
``take_handoff``), and the files the monitor removes for it. Shared by the set-up side
(``runtime.monitor.setup``) and the launcher (``runtime.monitor.launch``)."""

from __future__ import annotations

import _socket
import array
import os
import socket
from collections.abc import Callable

from runtime.monitor.crilog import CriLogWriter
from runtime.monitor.stdio import MonitorSide, StdioPlan

# Plain ints, combined once at import (in the zygote): or-ing socket's IntFlag members, or
# signal's enum conversions, run enum code, and every page the monitor touches is its own.
_PAIR_TYPE = int(socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
_RECV_FLAGS = int(socket.MSG_CMSG_CLOEXEC)
_HANDOFF_MAX = 1 << 16
_HANDOFF_ANC = socket.CMSG_SPACE(8 * array.array("i").itemsize)
FD_ROLES = frozenset((b"out1", b"out2", b"stdin", b"pty", b"log", b"listen"))


def set_up_in_child(set_up: Callable[[_socket.socket], int]) -> tuple[int, bytes, list[int]]:
    """Fork a throwaway child that runs ``set_up(sock)`` and exits; return its pid, the
    handoff it sent on ``sock`` (b"" when it died first) and the fds attached to it.

    Why: parsing the spec, reading cgroup mounts, creating the container, and the monitor's
    own set-up (stdio, log file, attach socket) allocate and touch many objects; every page
    touched becomes a private copy (copy-on-write from the zygote) in the long-lived
    monitor. The child does all of it and sends back the container's pid and the fds the
    monitor keeps (``handoff_words``), so the monitor runs little more than its loop. The child is
    a subreaper (spawn_init makes it one); when it exits, the container's process is
    re-parented to the monitor, itself a subreaper, which reaps it. The calling monitor
    detaches from its requester's stdio meanwhile.
    """
    child, ours = fork_with_channel(set_up)
    detach_own_stdio()
    msg, fds = receive_handoff(ours)
    return child, msg, fds


def fork_with_channel(run: Callable[[_socket.socket], int]) -> tuple[int, _socket.socket]:
    """Fork a child that runs ``run(sock)`` and exits with its code (whatever it raises);
    return the child's pid and our end of ``sock`` (a close-on-exec seqpacket pair)."""
    ours, theirs = _socket.socketpair(socket.AF_UNIX, _PAIR_TYPE)
    child = os.fork()
    if child == 0:
        code = 1
        try:
            ours.close()
            code = run(theirs)
        finally:
            os._exit(code)
    theirs.close()
    return child, ours


def receive_handoff(ours: _socket.socket) -> tuple[bytes, list[int]]:
    """The set-up child's message on ``ours`` (closed afterwards; b"" when the child died
    first) and the fds attached to it."""
    fds = array.array("i")
    try:
        msg, anc, _, _ = ours.recvmsg(_HANDOFF_MAX, _HANDOFF_ANC, _RECV_FLAGS)
    except OSError:
        msg, anc = b"", []
    ours.close()
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    return msg, list(fds)


def take_handoff(msg: bytes) -> dict[bytes, bytes] | None:
    """The handoff's words as a dict (see ``handoff_words``), once the files it names for removal
    (``unlink.*``) are removed; None for a failure (``failed``) or nothing (the child died)."""
    status, *rest = msg.split(b"\0")
    words = dict(w.split(b"=", 1) for w in rest)
    for key in (b"unlink.console", b"unlink.attach"):
        if key in words:
            unlink_quietly(words[key].decode(errors="surrogateescape"))
    return words if status == b"ok" else None


def to_unlink(plan: StdioPlan, attach_socket: str | None) -> list[bytes]:
    """The handoff's words naming the files the monitor removes for the set-up child."""
    words = []
    if plan.console_path:
        words.append(b"unlink.console=" + os.fsencode(plan.console_path))
    if attach_socket:
        words.append(b"unlink.attach=" + os.fsencode(attach_socket))
    return words


def handoff_words(pid: int, oom_before: int, mine: MonitorSide, log: CriLogWriter | None,
                  listener: _socket.socket | None) -> tuple[list[bytes], list[int]]:
    """What the set-up child sends the monitor: NUL-separated words ``ok``, ``pid=<pid>``,
    ``oom=<n>`` and ``<role>=<index>`` where each index points into the attached fds (roles:
    out1, out2, stdin, pty, log, listen; a terminal's pty is out1 and maybe stdin too).
    Callers append more: ``oomdir``/``oomfile`` (the spawner's ``oom_counter``),
    ``unlink.console``, and ``monitor_ahead``'s ``opt.<field>``, ``reply``, ``wait`` (fds
    attached as well)."""
    fds: list[int] = []
    words = [b"ok", b"pid=%d" % pid, b"oom=%d" % oom_before]
    roles = [(b"out1", mine.outputs.get(1)), (b"out2", mine.outputs.get(2)),
             (b"stdin", mine.stdin), (b"pty", mine.pty),
             (b"log", log.fileno() if log is not None else None),
             (b"listen", listener.fileno() if listener is not None else None)]
    for role, fd in roles:
        if fd is not None:
            if fd not in fds:
                fds.append(fd)
            words.append(role + b"=%d" % fds.index(fd))
    return words, fds


def unlink_quietly(path: str | None) -> None:
    if path:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def detach_own_stdio() -> None:
    """The monitor keeps none of its requester's terminals or pipes open."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)


def close_listener(listener: _socket.socket | None, path: str | None) -> None:
    """Stop serving attach clients: the listening socket closed and its file removed."""
    if listener is not None and path:
        listener.close()
        unlink_quietly(path)
