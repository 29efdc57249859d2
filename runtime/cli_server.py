"""The runtime server of one ``--root``: runs the ``crid-runtime`` commands its clients send.

``python -m runtime.cli_server ROOT READY_FD`` (started by ``runtime.cli`` on first use, in a
session of its own, stdio on /dev/null). It takes ``<root>/.crid-runtime.lock`` (flock; the
file holds its pid), listens on ``<root>/.crid-runtime.sock`` (mode 0600) and says ``ready`` on
READY_FD, or ``busy`` when another server holds the lock. Then, single-threaded, it takes one
connection at a time: the command runs with the client's stdio on fds 0-2 and its working
directory (``runtime.cli_commands.execute``); monitors come from a zygote it started, so no
container waits for an interpreter. The wire format is in ``runtime.cli``.

It holds nothing that matters: containers are on disk, each with its own monitor. It exits
after ``CRID_RUNTIME_SERVER_IDLE`` seconds (default 60) without a request, on SIGTERM, when its
socket is removed or replaced (its root was deleted), or when its own code changed on disk;
the next call starts a fresh one.
"""

from __future__ import annotations

import array
import fcntl
import io
import os
import select
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from runtime import cli_commands
from runtime.cli import LOCK_NAME, MAGIC, MAX_FDS, namespace_ids, socket_path
from runtime.cli_commands import Foreground, Host, NeedsTerminal
from runtime.errors import OCIRuntimeError
from runtime.monitor.launch import MonitorFds, MonitorRequest
from runtime.state import process_start_time
from runtime.zygote import Zygote

IDLE_DEFAULT = 60.0
_TICK = 1.0
_RECV_TIMEOUT = 5.0


class _Stop(Exception):
    """SIGTERM arrived between requests."""


class Server:
    """The accept loop of one root; ``serve`` returns when the server should exit."""

    def __init__(self, root: str, listener: socket.socket, idle: float) -> None:
        self.root = root
        self.listener = listener
        self.idle = idle
        self.sock_id = _inode(root)
        self.namespaces = namespace_ids()
        self.launcher = ZygoteLauncher()
        self.busy = False
        self.stopping = False
        self.code = CodeWatch()
        self.null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)

    def serve(self) -> None:
        signal.signal(signal.SIGTERM, self._on_term)
        last = time.monotonic()
        try:
            try:
                self.launcher.ensure()  # now, rather than in the first request
            except OCIRuntimeError:
                pass  # tried again by the first command that needs it, which reports it
            while not self.stopping:
                if select.select([self.listener], [], [], _TICK)[0]:
                    self._take_one()
                    last = time.monotonic()
                elif self._should_exit(time.monotonic() - last):
                    return
        except _Stop:
            return
        finally:
            self._close()

    def _on_term(self, *_: Any) -> None:
        self.stopping = True
        if not self.busy:
            raise _Stop

    def _should_exit(self, idle_for: float) -> bool:
        return (idle_for >= self.idle or _inode(self.root) != self.sock_id
                or self.code.changed())

    def _close(self) -> None:
        if _inode(self.root) == self.sock_id:  # still ours: nobody else's to remove
            path, dirfd = socket_path(self.root)
            try:
                os.unlink(path)
            except OSError:
                pass
            finally:
                if dirfd is not None:
                    os.close(dirfd)
        self.listener.close()
        self.launcher.close()

    # -- one connection ------------------------------------------------------------------------
    def _take_one(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        self.busy = True
        fds: list[int] = []
        try:
            conn.settimeout(_RECV_TIMEOUT)
            data, fds = _recv(conn)
            fields = data.split(b"\0")
            if not _trusted(conn) or len(fields) < 4 or fields[0] != MAGIC or len(fds) != 4:
                return  # not ours to serve: closing it tells the client nothing was done
            conn.sendall(b"ack")
            answer, extra = self._answer(fields, fds)
            try:
                socket.send_fds(conn, [answer], extra)
            finally:
                for fd in extra:
                    os.close(fd)
        except OSError:
            pass  # the client went away; what it asked for is done or undone on disk anyway
        finally:
            for fd in fds:
                os.close(fd)
            conn.close()
            self.busy = False
            if self.stopping:
                raise _Stop

    def _answer(self, fields: list[bytes], fds: list[int]) -> tuple[bytes, list[int]]:
        kind, namespaces, record = fields[1], fields[2], fields[3]
        argv = [f.decode("utf-8", "surrogateescape") for f in fields[4:]]
        if namespaces != self.namespaces:
            return b"local", []  # its paths, pids and cgroups would mean other things here
        with self._client(fds):
            try:
                if kind == b"finish":
                    return b"exit %d" % cli_commands.finish_command(argv, record, self._host()), []
                _, result = cli_commands.execute(argv, self._host())
            except NeedsTerminal:
                return b"local", []
            except Exception as e:  # noqa: BLE001 - a bug must not take the server down
                print(f"crid-runtime: internal error in the runtime server: "
                      f"{type(e).__name__}: {e}", file=sys.stderr)
                return b"exit 1", []
        if isinstance(result, Foreground):
            return b"wait %d" % result.pid, [result.wait_fd]
        return b"exit %d" % result, []

    def _host(self) -> Host:
        return Host(launcher=self.launcher, proxy_tty=False)

    @contextmanager
    def _client(self, fds: list[int]) -> Iterator[None]:
        """The client's stdio on fds 0-2 (and sys.std*), its cwd as ours, for one command."""
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        os.fchdir(fds[3])
        saved = sys.stdin, sys.stdout, sys.stderr
        sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
        try:
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except OSError:
                    pass
            sys.stdin, sys.stdout, sys.stderr = saved
            for target in (0, 1, 2):  # hold none of the client's files after the command
                os.dup2(self.null, target)
            os.chdir("/")


class ZygoteLauncher:
    """``runtime.lifecycle.MonitorLauncher`` over a zygote that is started on first need and
    again after it died (the monitors it forked live on regardless)."""

    def __init__(self) -> None:
        self.zygote: Zygote | None = None

    def ensure(self) -> Zygote:
        """The live zygote. Raises ZygoteError when none can be started."""
        if self.zygote is not None and process_start_time(self.zygote.pid) is None:
            self.zygote.close()
            self.zygote = None
        if self.zygote is None:
            self.zygote = Zygote.start()
        return self.zygote

    def launch(self, request: MonitorRequest, fds: MonitorFds) -> None:
        self.ensure().launch(request, fds)

    def close(self) -> None:
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None


class CodeWatch:
    """Whether one of the server's own modules changed on disk since it was loaded (the
    server then exits, so that the next call runs the new code)."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}
        self.changed()

    def changed(self) -> bool:
        for name, mod in list(sys.modules.items()):
            path = getattr(mod, "__file__", None)
            if not (path and name.partition(".")[0] == "runtime"):
                continue
            try:
                mtime = os.stat(path).st_mtime_ns
            except OSError:
                mtime = 0
            if self.seen.setdefault(path, mtime) != mtime:
                return True
        return False


def _recv(conn: socket.socket) -> tuple[bytes, list[int]]:
    fds = array.array("i")
    data, anc, _, _ = conn.recvmsg(1 << 20, socket.CMSG_SPACE(MAX_FDS * fds.itemsize),
                                   socket.MSG_CMSG_CLOEXEC)
    for level, kind, raw in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(raw[: len(raw) - len(raw) % fds.itemsize])
    return data, list(fds)


def _trusted(conn: socket.socket) -> bool:
    """Only the server's own user may drive it (the socket is 0600 too)."""
    _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return uid == os.geteuid()


def _inode(root: str) -> tuple[int, int] | None:
    path, dirfd = socket_path(root)
    try:
        st = os.stat(path)
        return st.st_dev, st.st_ino
    except OSError:
        return None
    finally:
        if dirfd is not None:
            os.close(dirfd)


# -- start-up ----------------------------------------------------------------------------------
def take_lock(root: str, wait: float = 2.0) -> int | None:
    """The root's server lock (an fd holding the flock, pid written in), None when a live
    server holds it. Waits up to ``wait`` s for a holder that no longer listens (exiting)."""
    os.makedirs(root, mode=0o711, exist_ok=True)
    fd = os.open(os.path.join(root, LOCK_NAME), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if _inode(root) is not None or time.monotonic() > deadline:
                os.close(fd)
                return None
            time.sleep(0.01)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def listen(root: str) -> socket.socket:
    """Bind the root's socket (replacing a stale one: we hold the lock) and listen."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    path, dirfd = socket_path(root)
    try:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        old = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
    finally:
        if dirfd is not None:
            os.close(dirfd)
    sock.listen(128)
    return sock


def run(root: str, ready_fd: int, idle: float) -> int:
    """The server's life: lock, listen, say so on ``ready_fd``, serve until it should exit."""
    root = os.path.abspath(root)
    try:
        lock = take_lock(root)
        if lock is None:
            _tell(ready_fd, b"busy")
            return 0
        listener = listen(root)
    except OSError as e:
        _tell(ready_fd, f"starting the runtime server for {root}: {e}".encode())
        return 1
    _set_comm("crid-runtime-s")
    _tell(ready_fd, b"ready")
    os.chdir("/")
    preload()
    Server(root, listener, idle).serve()
    os.close(lock)
    return 0


def preload() -> None:
    """Import what the commands import lazily (they are written for a one-shot process) and
    build the parsers once, so that no request pays for it."""
    import runtime.atomic  # noqa: F401
    import runtime.cli_tty  # noqa: F401
    import runtime.features  # noqa: F401
    import runtime.lifecycle  # noqa: F401
    from runtime.cgroups import Resources  # noqa: F401

    cli_commands.execute(["--version"], Host(proxy_tty=False))
    for name in cli_commands._ARGUMENTS:
        cli_commands._command_parser(name)


def _tell(fd: int, what: bytes) -> None:
    try:
        os.write(fd, what)
    finally:
        os.close(fd)


def _set_comm(name: str) -> None:
    try:
        with open("/proc/self/comm", "w") as f:
            f.write(name)
    except OSError:
        pass


def main() -> None:
    idle = float(os.environ.get("CRID_RUNTIME_SERVER_IDLE") or IDLE_DEFAULT)
    sys.exit(run(sys.argv[1], int(sys.argv[2]), idle))


if __name__ == "__main__":
    main()
