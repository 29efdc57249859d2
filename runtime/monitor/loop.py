"""The monitor: parent and subreaper of one container process (conmon's job).

It spawns the process through a ``ChildSpawner``, reports the pid on a reply fd, then in one
poll loop: logs output to the CRI log, fans it out to attach clients, feeds stdin, applies
resizes, reopens the log on request, and reaps. When the process exits it records the exit file,
tells clients, removes its socket and exits. It never depends on the process that started it.
"""

from __future__ import annotations

import _signal
import _socket
import array
import errno
import fcntl
import json
import os
import select
import signal
import socket
import struct
import termios
import time
from collections.abc import Callable
from typing import Protocol

from runtime.cgroups.files import read_keyed
from runtime.linux import libc
from runtime.monitor import framing
from runtime.monitor.attach import listen_unix
from runtime.monitor.crilog import READ_SIZE, CriLogWriter
from runtime.monitor.exitfile import ExitStatus, rfc3339_nano, write_exit_file
from runtime.monitor.leftovers import end_group
from runtime.monitor.stdio import ChildStdio, MonitorSide, StdioPlan
from runtime.records import dataclass

_IN = select.POLLIN | select.POLLHUP | select.POLLERR
_DRAIN_GRACE = 0.5      # seconds to wait for EOF on outputs once the process is gone
_CLIENT_BUFFER_MAX = 4 << 20
_BACKLOG_MAX = 64 << 10
_FIRST_CLIENT_LINGER = 5.0  # seconds
_NOT_COUNTED = -1  # OOM kills before the spawn, when not counted (brief processes)
# Plain ints, combined once at import (in the zygote): or-ing socket's IntFlag members, or
# signal's enum conversions, run enum code, and every page the monitor touches is its own.
_PAIR_TYPE = int(socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
_RECV_FLAGS = int(socket.MSG_CMSG_CLOEXEC)
_HANDOFF_MAX = 1 << 16
_HANDOFF_ANC = socket.CMSG_SPACE(8 * array.array("i").itemsize)


@dataclass(frozen=True)
class MonitorOptions:
    """What one monitor does (JSON-serialisable: it crosses the zygote socket).

    ``stdio_mode``: "pipes" (monitor holds stdio, logs it), "inherit" (the requester's fds go to
    the process untouched), "terminal" (pty via console socket, master held by the monitor) or
    "console" (terminal whose master goes to the requester's ``console_socket``).
    ``await_attach``: the requester is about to attach; output produced before it connects is
    kept for it (bounded), and an exit before it connects waits for it a little.
    ``brief``: the process is short-lived and its monitor with it (ExecSync): it is spawned by
    the monitor itself rather than from a throwaway child (see ``set_up_in_child``: the memory
    that child saves matters only for a monitor that lives long), which saves a fork and a
    second parse of the spec for the OOM count at the end; its exit never reports an OOM kill.
    """

    container_id: str
    stdio_mode: str = "pipes"
    log_path: str | None = None
    exit_file: str | None = None
    attach_socket: str | None = None
    console_socket: str | None = None
    stdin: bool = False
    stdin_once: bool = False
    await_attach: bool = False
    brief: bool = False

    @classmethod
    def from_dict(cls, d: dict) -> MonitorOptions:
        return cls(**d)


class ChildSpawner(Protocol):
    """Starts the monitored process (the container init, or an exec'd process)."""

    def spawn(self, stdio: ChildStdio) -> int:
        """Start the process as a child of the caller; return its pid. Raises OCIRuntimeError."""
        ...

    def oom_kill_count(self) -> int:
        """The OOM kills counted so far in the process's cgroup (0 when unknown)."""
        ...

    def oom_counter(self) -> tuple[str, str] | None:
        """(directory, keyed file) whose ``oom_kill`` the monitor may read at the end itself,
        rather than building the spawner again for ``oom_kill_count``; None: it builds it."""
        ...

    def leftover_group(self) -> str | None:
        """The cgroup directory whose processes the monitor ends once the process has exited
        (``runtime.monitor.leftovers``): a container init without a PID namespace of its
        own; None for everything else."""
        ...


class _Client:
    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.reader = framing.FrameReader()
        self.out = bytearray()
        self.wrote_stdin = False


class Monitor:
    """Runs one monitored process to its end. ``run`` returns the monitor's own exit code."""

    def __init__(self, opts: MonitorOptions, spawner: Callable[[], ChildSpawner],
                 inherited: tuple[int, int, int] | None = None,
                 reply_fd: int | None = None, wait_fd: int | None = None,
                 preserved: tuple[int, ...] = ()) -> None:
        self.opts = opts
        self.spawner = spawner
        self.inherited = inherited
        self.preserved = preserved
        self.reply_fd = reply_fd
        self.wait_fd = wait_fd
        self.pid = 0
        self.oom_counter: tuple[str, str] | None = None
        self.group: str | None = None  # see ChildSpawner.leftover_group
        self.status: ExitStatus | None = None
        self.log: CriLogWriter | None = None
        # _socket's type, not socket's: its Python wrappers (and their enum conversions) would
        # be more code run, and pages copied, in the monitor.
        self.listener: _socket.socket | None = None
        self.clients: dict[int, _Client] = {}
        self.stdin_buf = bytearray()
        self.stdin_closing = False
        self.first_stdin_client: int | None = None
        # Output produced before the awaited first client connects is kept (bounded) and
        # handed to it, so a caller attaching right after exec loses nothing.
        self.backlog: bytearray | None = bytearray() if opts.await_attach else None
        self.poll = select.poll()

    # -- set-up -----------------------------------------------------------------------------
    def run(self) -> int:
        """Set up (here for a brief process, else in a throwaway child), serve, finish;
        returns the monitor's exit code."""
        self.wake_r, _ = install_signals()
        if self.opts.brief:
            return self.serve(self._start_here())
        child, msg, fds = set_up_in_child(self._set_up_for_monitor)
        # the set-up child had its own copies of these
        for fd in (set(self.inherited or ()) | set(self.preserved)) - {0, 1, 2}:
            os.close(fd)
        return self.serve(self.adopt(child, take_handoff(msg), bool(msg), fds))

    def serve(self, oom_before: int | None) -> int:
        """The loop and the end, once set up (``oom_before`` None: the set-up failed, and the
        requester has the error); returns the monitor's exit code."""
        if oom_before is None:
            return 1
        try:
            self._loop()
        except Exception:  # a bug in the I/O must not lose the exit status: just reap
            self._reap_until_exit()
        self._finish(oom_before)
        return 0

    def _reap_until_exit(self) -> None:
        while self.status is None:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                self.status = ExitStatus(self.pid, 255, None, False, rfc3339_nano())
                return
            if pid == self.pid:
                self.status = ExitStatus.from_wait_status(pid, status, False)

    def _start_here(self) -> int | None:
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
        _detach_own_stdio()
        self._reply_started()
        # No OOM count: the caller of a brief process (ExecSync) has no use for it, and
        # reading it means finding the container's cgroup, twice.
        return _NOT_COUNTED

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
        self._reply({"ok": False, "error": str(e), "type": kind})
        if unlink:
            self._remove_socket()
        elif self.listener is not None:
            self.listener.close()

    def set_up_for_monitor(self, sock: _socket.socket, extra: list[bytes],
                           passed: dict[bytes, int] | None = None) -> int:
        """In the throwaway set-up child (see ``set_up_in_child``): set up, spawn, and send the
        monitor the handoff (``extra``: more words for it; ``passed``: more fds, each named
        ``<role>=<index>`` like the handoff's own); on failure, answer the requester and tell
        the monitor. Returns the child's exit code.

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
            sock.send(b"\0".join([b"failed", *_to_unlink(plan, self.opts.attach_socket)]))
            return 1
        words, fds = _handoff(self.pid, oom_before, plan.mine, self.log, self.listener)
        for role, fd in (passed or {}).items():
            words.append(role + b"=%d" % len(fds))
            fds.append(fd)
        words += _to_unlink(plan, None)
        if counter is not None:  # where the monitor reads the OOM kills at the end
            words += [b"oomdir=" + os.fsencode(counter[0]), b"oomfile=" + os.fsencode(counter[1])]
        if group is not None:  # whose leftovers the monitor ends (ChildSpawner.leftover_group)
            words.append(b"group=" + os.fsencode(group))
        sock.sendmsg([b"\0".join(words + extra)],
                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        return 0

    def _set_up_for_monitor(self, sock: _socket.socket) -> int:
        return self.set_up_for_monitor(sock, [])

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
                self._reply({"ok": False, "error": "the container's creator process died",
                             "type": "InitError"})
                _unlink(self.opts.attach_socket)
            return None
        kept = {role: fds[int(i)] for role, i in handoff.items() if role in _FD_ROLES}
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

    def _reply(self, msg: dict) -> None:
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

    # -- the loop -----------------------------------------------------------------------------
    def _loop(self) -> None:
        self.poll.register(self.wake_r, select.POLLIN)
        for fd in self.mine.outputs.values():
            os.set_blocking(fd, False)
            self.poll.register(fd, _IN)
        if self.mine.stdin is not None and self.mine.stdin != self.mine.pty:
            os.set_blocking(self.mine.stdin, False)
        if self.listener is not None:
            self.poll.register(self.listener.fileno(), select.POLLIN)
        deadline = None
        while self.mine.outputs or self.status is None:
            if self.status is not None and deadline is None:
                self._end_leftovers()
                deadline = time.monotonic() + _DRAIN_GRACE
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic()) * 1000
            events = self.poll.poll(timeout)
            if not events and deadline is not None:
                break
            for fd, ev in events:
                self._dispatch(fd, ev)

    def _dispatch(self, fd: int, ev: int) -> None:
        if fd == self.wake_r:
            _drain(fd)
            self._reap()
        elif fd in self.mine.outputs.values():
            self._on_output(fd)
        elif self.listener is not None and fd == self.listener.fileno():
            self._accept()
        elif fd in self.clients:
            self._on_client(fd, ev)
        elif fd == self.mine.stdin:
            self._flush_stdin()

    def _end_leftovers(self) -> None:
        """The process has exited: end whatever it left in its cgroup (see ``leftovers``)
        before the exit is recorded; they held its output pipes too, so the drain ends."""
        if self.group is not None:
            end_group(self.group, self._reap_now)

    def _reap_now(self) -> None:
        _drain(self.wake_r)
        self._reap()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.pid:
                self._wait_status = status
                self.status = ExitStatus.from_wait_status(pid, status, False)

    def _on_output(self, fd: int) -> None:
        stream = next(s for s, f in self.mine.outputs.items() if f == fd)
        try:
            chunk = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError as e:  # EIO: pty slave closed
            if e.errno != errno.EIO:
                raise
            chunk = b""
        if not chunk:
            self.poll.unregister(fd)
            del self.mine.outputs[stream]
            if fd != self.mine.pty:
                os.close(fd)
            return
        if self.log is not None:
            self.log.write(stream, chunk)
        self._broadcast(framing.encode(stream, chunk))

    # -- attach clients -------------------------------------------------------------------------
    def _accept(self) -> None:
        assert self.listener is not None
        try:
            fd, _ = self.listener._accept()  # type: ignore[attr-defined]  # socket.accept wraps it
        except BlockingIOError:
            return
        sock = _socket.socket(fileno=fd)
        sock.setblocking(False)
        client = _Client(sock)
        self.clients[sock.fileno()] = client
        self.poll.register(sock.fileno(), _IN)
        if self.backlog:
            self._queue(client, bytes(self.backlog))
        self.backlog = None

    def _on_client(self, fd: int, ev: int) -> None:
        client = self.clients[fd]
        if ev & select.POLLOUT:
            self._flush_client(client)
        if not ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
            return
        try:
            data = client.sock.recv(65536)
            frames = client.reader.feed(data) if data else None
        except (OSError, framing.FrameError):
            frames = None
        if frames is None:
            self._drop(fd)
            return
        for kind, payload in frames:
            self._on_frame(fd, client, kind, payload)

    def _on_frame(self, fd: int, client: _Client, kind: int, payload: bytes) -> None:
        if kind == framing.STDIN and self.mine.stdin is not None and not self.stdin_closing:
            if self.first_stdin_client is None:
                self.first_stdin_client = fd
            self.stdin_buf += payload
            self._flush_stdin()
        elif kind == framing.CLOSE_STDIN and self.opts.stdin_once:
            self._close_stdin()
        elif kind == framing.RESIZE and self.mine.pty is not None and len(payload) == 4:
            rows, cols = framing.RESIZE_PAYLOAD.unpack(payload)
            fcntl.ioctl(self.mine.pty, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        elif kind == framing.REOPEN_LOG:
            self._queue(client, framing.encode(framing.REOPENED, self._reopen()))

    def _reopen(self) -> bytes:
        if self.log is None:
            return b"no log file"
        try:
            self.log.reopen()
        except OSError as e:
            return str(e).encode()
        return b""

    def _drop(self, fd: int) -> None:
        client = self.clients.pop(fd)
        self.poll.unregister(fd)
        client.sock.close()
        if fd == self.first_stdin_client and self.opts.stdin_once:
            self._close_stdin()

    def _broadcast(self, frame: bytes) -> None:
        if self.backlog is not None and len(self.backlog) < _BACKLOG_MAX:
            self.backlog += frame
        for fd, client in list(self.clients.items()):
            if len(client.out) > _CLIENT_BUFFER_MAX:
                self._drop(fd)  # a client that stopped reading must not stall the container
            else:
                self._queue(client, frame)

    def _queue(self, client: _Client, frame: bytes) -> None:
        client.out += frame
        self._flush_client(client)

    def _flush_client(self, client: _Client) -> None:
        fd = client.sock.fileno()
        try:
            sent = client.sock.send(client.out) if client.out else 0
        except BlockingIOError:
            sent = 0
        except OSError:
            self._drop(fd)
            return
        del client.out[:sent]
        self.poll.modify(fd, _IN | (select.POLLOUT if client.out else 0))

    # -- stdin --------------------------------------------------------------------------------
    def _flush_stdin(self) -> None:
        fd = self.mine.stdin
        if fd is None:
            return
        try:
            n = os.write(fd, self.stdin_buf) if self.stdin_buf else 0
            del self.stdin_buf[:n]
        except BlockingIOError:
            pass
        except OSError:  # the reader is gone
            self.stdin_buf.clear()
        if self.stdin_closing and not self.stdin_buf:
            self._close_stdin()
        elif fd != self.mine.pty:
            self._watch_stdin(bool(self.stdin_buf))

    def _watch_stdin(self, on: bool) -> None:
        fd = self.mine.stdin
        if fd is None:
            return
        if on:
            self.poll.register(fd, select.POLLOUT)  # register() also modifies
            return
        try:
            self.poll.unregister(fd)
        except KeyError:
            pass

    def _close_stdin(self) -> None:
        self.stdin_closing = True
        fd = self.mine.stdin
        if fd is None or self.stdin_buf and fd != self.mine.pty:
            return
        if fd == self.mine.pty:
            self.mine.stdin = None  # a terminal has no separate stdin to close
            return
        self._watch_stdin(False)
        os.close(fd)
        self.mine.stdin = None

    # -- the end ------------------------------------------------------------------------------
    def _finish(self, oom_before: int) -> None:
        assert self.status is not None
        try:
            oom = oom_before != _NOT_COUNTED and self._oom_kills() > oom_before
        except Exception:
            oom = False
        self.status = ExitStatus(self.status.pid, self.status.exit_code, self.status.signal,
                                 oom, self.status.finished_at)
        record = self.status.to_json()
        if self.opts.exit_file:
            write_exit_file(self.opts.exit_file, self.status)
        if self.log is not None:
            self.log.close()
        self._await_first_client()
        self._remove_socket()
        self._farewell(record)
        if self.wait_fd is not None:
            try:
                os.write(self.wait_fd, record)
            except OSError:
                pass
            os.close(self.wait_fd)

    def _oom_kills(self) -> int:
        if self.oom_counter is None:
            return self.spawner().oom_kill_count()
        return read_keyed(*self.oom_counter).get("oom_kill", 0)

    def _await_first_client(self) -> None:
        """The awaited client has not connected yet (an exec whose process finished before its
        caller attached): linger a little for it, then hand it everything."""
        if self.backlog is None or self.listener is None:
            return
        if select.select([self.listener], [], [], _FIRST_CLIENT_LINGER)[0]:
            self._accept()

    def _remove_socket(self) -> None:
        if self.listener is not None and self.opts.attach_socket:
            self.listener.close()
            _unlink(self.opts.attach_socket)

    def _farewell(self, record: bytes) -> None:
        """Give connected clients the rest of the output and the exit record, then close."""
        deadline = time.monotonic() + 2.0
        for client in self.clients.values():
            sock = client.sock
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                sock.sendall(bytes(client.out) + framing.encode(framing.EXIT, record))
                sock.shutdown(socket.SHUT_WR)
                # Read what the client still sends until it closes: closing a unix socket
                # with unread input resets the connection, and the client could lose the end.
                while sock.recv(65536):
                    pass
            except OSError:
                pass
            sock.close()
        self.clients.clear()


_FD_ROLES = frozenset((b"out1", b"out2", b"stdin", b"pty", b"log", b"listen"))


def install_signals() -> tuple[int, int]:
    """Make the calling monitor a subreaper whose poll loop SIGCHLD wakes; returns the wake
    pipe (the loop polls its read end; ``_signal.set_wakeup_fd`` has its write end). C-level
    calls only (``_signal``, not ``signal``, whose enum conversions run Python code): a
    monitor pays a private copy of every page it touches (see ``set_up_in_child``)."""
    libc.set_child_subreaper()
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    wake_r, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    _signal.signal(_signal.SIGCHLD, _wake)
    _signal.set_wakeup_fd(wake_w)
    return wake_r, wake_w


def _wake(signum: int, frame: object) -> None:
    """SIGCHLD's handler: nothing to do, the wakeup fd wakes the loop."""


def set_up_in_child(set_up: Callable[[_socket.socket], int]) -> tuple[int, bytes, list[int]]:
    """Fork a throwaway child that runs ``set_up(sock)`` and exits; return its pid, the
    handoff it sent on ``sock`` (b"" when it died first) and the fds attached to it.

    Why: parsing the spec, reading cgroup mounts, creating the container, and the monitor's
    own set-up (stdio, log file, attach socket) allocate and touch many objects; every page
    touched becomes a private copy (copy-on-write from the zygote) in the long-lived
    monitor. The child does all of it and sends back the container's pid and the fds the
    monitor keeps (``_handoff``), so the monitor runs little more than its loop. The child is
    a subreaper (spawn_init makes it one); when it exits, the container's process is
    re-parented to the monitor, itself a subreaper, which reaps it. The calling monitor
    detaches from its requester's stdio meanwhile.
    """
    child, ours = fork_with_channel(set_up)
    _detach_own_stdio()
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
    """The handoff's words as a dict (see ``_handoff``), once the files it names for removal
    (``unlink.*``) are removed; None for a failure (``failed``) or nothing (the child died)."""
    status, *rest = msg.split(b"\0")
    words = dict(w.split(b"=", 1) for w in rest)
    for key in (b"unlink.console", b"unlink.attach"):
        if key in words:
            _unlink(words[key].decode(errors="surrogateescape"))
    return words if status == b"ok" else None


def _to_unlink(plan: StdioPlan, attach_socket: str | None) -> list[bytes]:
    """The handoff's words naming the files the monitor removes for the set-up child."""
    words = []
    if plan.console_path:
        words.append(b"unlink.console=" + os.fsencode(plan.console_path))
    if attach_socket:
        words.append(b"unlink.attach=" + os.fsencode(attach_socket))
    return words


def _handoff(pid: int, oom_before: int, mine: MonitorSide, log: CriLogWriter | None,
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


def _unlink(path: str | None) -> None:
    if path:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _sibling(path: str, name: str) -> str:
    return os.path.join(os.path.dirname(path), f".{name}-{os.getpid()}.sock")


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _detach_own_stdio() -> None:
    """The monitor keeps none of its requester's terminals or pipes open."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
