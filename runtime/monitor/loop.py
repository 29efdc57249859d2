"""The monitor: parent and subreaper of one container process (conmon's job).

It spawns the process through a ``ChildSpawner``, reports the pid on a reply fd, then in one
poll loop: logs output to the CRI log, fans it out to attach clients, feeds stdin, applies
resizes, reopens the log on request, and reaps. When the process exits it records the exit file,
tells clients, removes its socket and exits. It never depends on the process that started it.
"""

from __future__ import annotations

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

from runtime import libc
from runtime.cgroups.files import read_keyed
from runtime.cgroups.warmup import warm_up_migration
from runtime.errors import OCIRuntimeError
from runtime.monitor import framing
from runtime.monitor.attach import listen_unix
from runtime.monitor.crilog import READ_SIZE, CriLogWriter
from runtime.monitor.exitfile import ExitStatus, rfc3339_nano, write_exit_file
from runtime.monitor.stdio import ChildStdio, StdioPlan
from runtime.records import dataclass

_IN = select.POLLIN | select.POLLHUP | select.POLLERR
_DRAIN_GRACE = 0.5      # seconds to wait for EOF on outputs once the process is gone
_CLIENT_BUFFER_MAX = 4 << 20
_BACKLOG_MAX = 64 << 10
_FIRST_CLIENT_LINGER = 5.0  # seconds
_NOT_COUNTED = -1  # OOM kills before the spawn, when not counted (brief processes)


@dataclass(frozen=True)
class MonitorOptions:
    """What one monitor does (JSON-serialisable: it crosses the zygote socket).

    ``stdio_mode``: "pipes" (monitor holds stdio, logs it), "inherit" (the requester's fds go to
    the process untouched), "terminal" (pty via console socket, master held by the monitor) or
    "console" (terminal whose master goes to the requester's ``console_socket``).
    ``await_attach``: the requester is about to attach; output produced before it connects is
    kept for it (bounded), and an exit before it connects waits for it a little.
    ``brief``: the process is short-lived and its monitor with it (ExecSync): it is spawned by
    the monitor itself rather than from a throwaway child (see ``_spawn_in_child``: the memory
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


class _Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = framing.FrameReader()
        self.out = bytearray()
        self.wrote_stdin = False


class Monitor:
    """Runs one monitored process to its end. ``run`` returns the monitor's own exit code."""

    def __init__(self, opts: MonitorOptions, spawner: Callable[[], ChildSpawner],
                 inherited: tuple[int, int, int] | None = None,
                 reply_fd: int | None = None, wait_fd: int | None = None) -> None:
        self.opts = opts
        self.spawner = spawner
        self.inherited = inherited
        self.reply_fd = reply_fd
        self.wait_fd = wait_fd
        self.pid = 0
        self.oom_counter: tuple[str, str] | None = None
        self.status: ExitStatus | None = None
        self.log: CriLogWriter | None = None
        self.listener: socket.socket | None = None
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
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self._wake_r, wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_w)
        plan = StdioPlan()
        try:
            oom_before = self._start(plan)
        except Exception as e:  # reported to the requester, who raises it
            if self.pid:  # spawned, but the set-up around it failed: take it down
                _kill_and_reap(self.pid)
            plan.abort()
            kind = getattr(e, "kind", type(e).__name__)
            self._reply({"ok": False, "error": str(e), "type": kind})
            self._remove_socket()
            return 1
        self.mine = plan.mine
        self._reply({"ok": True, "pid": self.pid, "monitor_pid": os.getpid()})
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

    def _start(self, plan: StdioPlan) -> int:
        o = self.opts
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
        if o.brief:
            self.pid, oom_before = self._spawn_here(plan.child)
        else:
            self.pid, oom_before, self.oom_counter = _spawn_in_child(self.spawner, plan.child)
        plan.after_spawn()
        if o.stdio_mode == "terminal":
            plan.mine.stdin = plan.mine.pty if o.stdin else None
        _detach_own_stdio()
        return oom_before

    def _spawn_here(self, stdio: ChildStdio) -> tuple[int, int]:
        # No OOM count (-1): the caller of a brief process (ExecSync) has no use for it, and
        # reading it means finding the container's cgroup, twice.
        return self.spawner().spawn(stdio), _NOT_COUNTED

    def _reply(self, msg: dict) -> None:
        if self.reply_fd is None:
            return
        try:
            os.write(self.reply_fd, json.dumps(msg).encode() + b"\n")
        except OSError:
            pass  # the requester is gone; the container carries on
        os.close(self.reply_fd)
        self.reply_fd = None

    # -- the loop -----------------------------------------------------------------------------
    def _loop(self) -> None:
        self.poll.register(self._wake_r, select.POLLIN)
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
                deadline = time.monotonic() + _DRAIN_GRACE
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic()) * 1000
            events = self.poll.poll(timeout)
            if not events and deadline is not None:
                break
            for fd, ev in events:
                self._dispatch(fd, ev)

    def _dispatch(self, fd: int, ev: int) -> None:
        if fd == self._wake_r:
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
            sock, _ = self.listener.accept()
        except BlockingIOError:
            return
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
            try:
                os.unlink(self.opts.attach_socket)
            except FileNotFoundError:
                pass

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


class SpawnFailed(OCIRuntimeError):
    """The spawner failed in the creator child; ``kind`` names the original exception type."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _spawn_in_child(make: Callable[[], ChildSpawner],
                    stdio: ChildStdio) -> tuple[int, int, tuple[str, str] | None]:
    """Build the spawner and spawn in a short-lived child; return (pid, OOM kills before, the
    spawner's ``oom_counter``).

    Why: parsing the spec, reading cgroup mounts and setting up the container allocate and
    touch many objects, and each page they touch becomes a private copy (copy-on-write) in
    the long-lived monitor. A throwaway child keeps the monitor's own memory small (measured:
    about 1.7 MiB less). The child is a subreaper (spawn_init makes it one); when it exits, the
    spawned process is re-parented to the monitor, itself a subreaper, which then reaps it.
    The child's exit (tearing down its address space) is not waited for: the loop reaps it.
    """
    r, w = os.pipe2(os.O_CLOEXEC)
    child = os.fork()
    if child == 0:
        os.close(r)
        try:
            spawner = make()
            oom_before = spawner.oom_kill_count()
            msg: dict = {"pid": spawner.spawn(stdio), "oom_before": oom_before,
                         "oom_counter": spawner.oom_counter()}
        except BaseException as e:
            msg = {"error": str(e), "type": getattr(e, "kind", type(e).__name__)}
        try:
            os.write(w, json.dumps(msg).encode() + b"\n")
        finally:
            os._exit(0)
    os.close(w)
    warm_up_migration()  # while the child sets up, before it places the process in a cgroup
    try:
        data = _read_line(r)
    finally:
        os.close(r)
    msg = json.loads(data) if data else {"error": "the creator process died",
                                         "type": "InitError"}
    if "pid" not in msg:
        raise SpawnFailed(msg["error"], msg["type"])
    counter = msg.get("oom_counter")
    return int(msg["pid"]), int(msg["oom_before"]), tuple(counter) if counter else None


def _read_line(fd: int) -> bytes:
    """What a child writes up to its first newline (all of it when it dies first)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        data += chunk
    return data


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
