"""The monitor: parent and subreaper of one container process (conmon's job).

``runtime.monitor.setup`` spawns the process through a ``ChildSpawner`` and reports the pid on a
reply fd (in a throwaway child that hands its result over, ``runtime.monitor.handoff``); this
module is the serving loop that runs on what the set-up left. In one poll loop it logs output
to the CRI log, fans it out to attach clients, feeds stdin, applies resizes, reopens the log on
request, and reaps. When the process exits it records the exit file, tells clients, removes its
socket and exits. It never depends on the process that started it.
"""

from __future__ import annotations

import _signal
import _socket
import errno
import fcntl
import os
import select
import socket
import struct
import termios
import time
from collections.abc import Callable

from runtime.cgroups.files import read_keyed
from runtime.linux import libc
from runtime.monitor import framing
from runtime.monitor.crilog import READ_SIZE, CriLogWriter
from runtime.monitor.exitfile import ExitStatus, rfc3339_nano, write_exit_file
from runtime.monitor.handoff import close_listener, set_up_in_child, take_handoff
from runtime.monitor.leftovers import end_group
from runtime.monitor.options import ChildSpawner, MonitorOptions
from runtime.monitor.setup import NOT_COUNTED, MonitorSetUp
from runtime.monitor.stdio import MonitorSide

_IN = select.POLLIN | select.POLLHUP | select.POLLERR
_DRAIN_GRACE = 0.5      # seconds to wait for EOF on outputs once the process is gone
_CLIENT_BUFFER_MAX = 4 << 20
_BACKLOG_MAX = 64 << 10
_FIRST_CLIENT_LINGER = 5.0  # seconds


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
        self.setup = MonitorSetUp(opts, spawner, inherited, reply_fd, preserved)
        self.wait_fd = wait_fd
        self.pid = 0
        self.mine = MonitorSide()
        self.oom_counter: tuple[str, str] | None = None
        self.group: str | None = None  # see ChildSpawner.leftover_group
        self.status: ExitStatus | None = None
        self.log: CriLogWriter | None = None
        self.listener: _socket.socket | None = None
        self.clients: dict[int, _Client] = {}
        self.stdin_buf = bytearray()
        self.stdin_closing = False
        self.first_stdin_client: int | None = None
        # Output produced before the awaited first client connects is kept (bounded) and
        # handed to it, so a caller attaching right after exec loses nothing.
        self.backlog: bytearray | None = bytearray() if opts.await_attach else None
        self.poll = select.poll()

    # -- set-up, then serving -------------------------------------------------------------
    def run(self) -> int:
        """Set up (here for a brief process, else in a throwaway child), serve, finish;
        returns the monitor's exit code."""
        self.wake_r, _ = install_signals()
        setup = self.setup
        if self.opts.brief:
            return self.serve(setup.start_here())
        child, msg, fds = set_up_in_child(setup.set_up_for_monitor)
        # the set-up child had its own copies of these
        for fd in (set(setup.inherited or ()) | set(setup.preserved)) - {0, 1, 2}:
            os.close(fd)
        return self.serve(setup.adopt(child, take_handoff(msg), bool(msg), fds))

    def serve(self, oom_before: int | None) -> int:
        """The loop and the end, once set up (``oom_before`` None: the set-up failed, and the
        requester has the error); returns the monitor's exit code."""
        if oom_before is None:
            return 1
        self._take(self.setup)
        try:
            self._loop()
        except Exception:  # a bug in the I/O must not lose the exit status: just reap
            self._reap_until_exit()
        self._finish(oom_before)
        return 0

    def _take(self, setup: MonitorSetUp) -> None:
        """What the set-up left: the process, the ends of its stdio, the log, the listener."""
        self.pid, self.mine, self.log, self.listener = \
            setup.pid, setup.mine, setup.log, setup.listener
        self.oom_counter, self.group = setup.oom_counter, setup.group

    def _reap_until_exit(self) -> None:
        while self.status is None:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                self.status = ExitStatus(self.pid, 255, None, False, rfc3339_nano())
                return
            if pid == self.pid:
                self.status = ExitStatus.from_wait_status(pid, status, False)

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
            oom = oom_before != NOT_COUNTED and self._oom_kills() > oom_before
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
        close_listener(self.listener, self.opts.attach_socket)
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


def install_signals() -> tuple[int, int]:
    """Make the calling monitor a subreaper whose poll loop SIGCHLD wakes; returns the wake
    pipe (the loop polls its read end; ``_signal.set_wakeup_fd`` has its write end). C-level
    calls only (``_signal``, not ``signal``, whose enum conversions run Python code): a
    monitor pays a private copy of every page it touches (see ``handoff.set_up_in_child``)."""
    libc.set_child_subreaper()
    _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
    wake_r, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    _signal.signal(_signal.SIGCHLD, _wake)
    _signal.set_wakeup_fd(wake_w)
    return wake_r, wake_w


def _wake(signum: int, frame: object) -> None:
    """SIGCHLD's handler: nothing to do, the wakeup fd wakes the loop."""


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
