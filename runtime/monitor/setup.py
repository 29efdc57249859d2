"""The monitor's set-up and hand-off: the stdio plan, the log file and the attach socket, the
spawn, and the answer to the requester, run either in a throwaway child that hands the result
over (``set_up_for_monitor``, then ``adopt`` in the monitor) or in the monitor itself for a
brief process (``start_here``). What it leaves (``pid``, ``mine``, ``log``, ``listener``, the
OOM counter and the leftover group) is what the serving loop (``runtime.monitor.loop``) runs on.
"""

from __future__ import annotations

import _socket
import array
import json
import os
import signal
import socket
from collections.abc import Callable

from runtime.monitor.attach import listen_unix
from runtime.monitor.crilog import CriLogWriter
from runtime.monitor.handoff import (
    FD_ROLES,
    close_listener,
    detach_own_stdio,
    handoff_words,
    to_unlink,
    unlink_quietly,
)
from runtime.monitor.options import ChildSpawner, MonitorOptions
from runtime.monitor.stdio import MonitorSide, StdioPlan

NOT_COUNTED = -1  # OOM kills before the spawn, when not counted (brief processes)


class MonitorSetUp:
    """Sets one monitored process up and answers its requester on ``reply_fd``."""

    def __init__(self, opts: MonitorOptions, spawner: Callable[[], ChildSpawner],
                 inherited: tuple[int, int, int] | None = None,
                 reply_fd: int | None = None, preserved: tuple[int, ...] = ()) -> None:
        self.opts = opts
        self.spawner = spawner
        self.inherited = inherited
        self.preserved = preserved
        self.reply_fd = reply_fd
        self.pid = 0
        self.mine = MonitorSide()
        self.log: CriLogWriter | None = None
        # _socket's type, not socket's: its Python wrappers (and their enum conversions) would
        # be more code run, and pages copied, in the monitor.
        self.listener: _socket.socket | None = None
        self.oom_counter: tuple[str, str] | None = None
        self.group: str | None = None  # see ChildSpawner.leftover_group

    def start_here(self) -> int | None:
        """Set up and spawn in this process (a brief process, see ``MonitorOptions``): the OOM
        kills before it, or None when it failed (the requester has the error)."""
        plan = StdioPlan()
        try:
            self._prepare(plan)
            self.pid = self.spawner().spawn(plan.child)
            self._after_spawn(plan)
        except Exception as e:
            self._fail(plan, e)
            return None
        self.mine = plan.mine
        detach_own_stdio()
        self._reply_started()
        # No OOM count: the caller of a brief process (ExecSync) has no use for it, and
        # reading it means finding the container's cgroup, twice.
        return NOT_COUNTED

    def _prepare(self, plan: StdioPlan) -> None:
        """The stdio plan, the log file and the attach socket. Raises OSError."""
        o = self.opts
        plan.preserve(self.preserved)
        if o.stdio_mode == "inherit":
            plan.inherit(self.inherited or (0, 1, 2))
        elif o.stdio_mode == "console":
            plan.child.console_socket = o.console_socket
        elif o.stdio_mode == "terminal":
            plan.console(_sibling(o.attach_socket or o.exit_file or "/tmp/x", "console"))
        else:
            plan.pipes(o.stdin)
        if o.log_path:
            self.log = CriLogWriter(o.log_path)
        if o.attach_socket:
            self.listener = listen_unix(o.attach_socket)
            self.listener.setblocking(False)

    def _after_spawn(self, plan: StdioPlan, unlink: bool = True) -> None:
        plan.after_spawn(unlink=unlink)
        if self.opts.stdio_mode == "terminal":
            plan.mine.stdin = plan.mine.pty if self.opts.stdin else None

    def _fail(self, plan: StdioPlan, e: BaseException, unlink: bool = True) -> None:
        """Undo the set-up and answer the requester; ``unlink``: remove the attach socket's
        file too (else the caller's job)."""
        if self.pid:  # spawned, but the set-up around it failed: take it down
            _kill_and_reap(self.pid)
        plan.abort()
        kind = getattr(e, "kind", type(e).__name__)
        self.reply({"ok": False, "error": str(e), "type": kind})
        if unlink:
            close_listener(self.listener, self.opts.attach_socket)
        elif self.listener is not None:
            self.listener.close()

    def set_up_for_monitor(self, sock: _socket.socket, extra: list[bytes] | None = None,
                           passed: dict[bytes, int] | None = None) -> int:
        """In the throwaway set-up child (see ``handoff.set_up_in_child``): set up, spawn, and
        send the monitor the handoff (``extra``: more words for it; ``passed``: more fds, each
        named ``<role>=<index>`` like the handoff's own); on failure, answer the requester and
        tell the monitor. Returns the child's exit code.

        The spawn may have taken this process into the container's namespaces (spawn_init's
        ``in_place``), where the host's paths are not what they were: afterwards it uses fds
        only, and leaves the files to remove (``unlink.*``) to the monitor."""
        plan = StdioPlan()
        try:
            self._prepare(plan)
            spawner = self.spawner()
            oom_before = spawner.oom_kill_count()
            self.pid = spawner.spawn(plan.child)
            counter = spawner.oom_counter()
            group = spawner.leftover_group()
            self._after_spawn(plan, unlink=False)
        except BaseException as e:
            self._fail(plan, e, unlink=False)
            sock.send(b"\0".join([b"failed", *to_unlink(plan, self.opts.attach_socket)]))
            return 1
        words, fds = handoff_words(self.pid, oom_before, plan.mine, self.log, self.listener)
        for role, fd in (passed or {}).items():
            words.append(role + b"=%d" % len(fds))
            fds.append(fd)
        words += to_unlink(plan, None)
        if counter is not None:  # where the monitor reads the OOM kills at the end
            words += [b"oomdir=" + os.fsencode(counter[0]), b"oomfile=" + os.fsencode(counter[1])]
        if group is not None:  # whose leftovers the monitor ends (ChildSpawner.leftover_group)
            words.append(b"group=" + os.fsencode(group))
        sock.sendmsg([b"\0".join(words + (extra or []))],
                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        return 0

    def adopt(self, child: int, handoff: dict[bytes, bytes] | None, answered: bool,
              fds: list[int]) -> int | None:
        """In the monitor: take over what the set-up child sent (``set_up_in_child``,
        ``take_handoff``) and answer the requester (the loop reaps the child). ``answered``:
        the child answered the requester itself (it failed). Returns the OOM kills before the
        spawn, or None when the set-up failed (the requester has the error)."""
        if handoff is None:
            for fd in fds:
                os.close(fd)
            os.waitpid(child, 0)
            if answered:
                self._drop_reply()
            else:  # it died without a word (killed?)
                self.reply({"ok": False, "error": "the container's creator process died",
                            "type": "InitError"})
                unlink_quietly(self.opts.attach_socket)
            return None
        kept = {role: fds[int(i)] for role, i in handoff.items() if role in FD_ROLES}
        self.pid = int(handoff[b"pid"])
        if b"oomdir" in handoff:
            self.oom_counter = (handoff[b"oomdir"].decode(errors="surrogateescape"),
                                handoff[b"oomfile"].decode(errors="surrogateescape"))
        if b"group" in handoff:
            self.group = handoff[b"group"].decode(errors="surrogateescape")
        self.mine = MonitorSide(outputs={s: kept[r] for s, r in ((1, b"out1"), (2, b"out2"))
                                         if r in kept},
                                stdin=kept.get(b"stdin"), pty=kept.get(b"pty"))
        if b"log" in kept:
            self.log = CriLogWriter(self.opts.log_path or "", kept[b"log"])
        if b"listen" in kept:
            self.listener = _socket.socket(fileno=kept[b"listen"])
            self.listener.setblocking(False)
        # Not waiting for the set-up child's exit (tearing down its address space takes a
        # millisecond or more): the loop reaps it, and its exit re-parents the container's
        # process to this monitor (a subreaper) a moment after the requester has its pid.
        self._reply_started()
        return int(handoff[b"oom"])

    def _reply_started(self) -> None:
        # Formatted by hand: json's encoder would be one more thing the monitor touches.
        self._write_reply(b'{"ok": true, "pid": %d, "monitor_pid": %d}\n'
                          % (self.pid, os.getpid()))

    def reply(self, msg: dict) -> None:
        self._write_reply(json.dumps(msg).encode() + b"\n")

    def _drop_reply(self) -> None:
        if self.reply_fd is not None:
            os.close(self.reply_fd)
            self.reply_fd = None

    def _write_reply(self, line: bytes) -> None:
        if self.reply_fd is None:
            return
        try:
            os.write(self.reply_fd, line)
        except OSError:
            pass  # the requester is gone; the container carries on
        os.close(self.reply_fd)
        self.reply_fd = None


def _sibling(path: str, name: str) -> str:
    return os.path.join(os.path.dirname(path), f".{name}-{os.getpid()}.sock")


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
