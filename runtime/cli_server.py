"""The runtime server of one ``--root``: serves the ``crid-runtime`` calls of its clients.

``python -m runtime.cli_server ROOT READY_FD`` (started by ``runtime.cli`` on first use, in a
session of its own, stdio on /dev/null). It takes ``<root>/.crid-runtime.lock`` (flock; the
file holds its pid), listens on ``<root>/.crid-runtime.sock`` (mode 0600), says ``ready`` on
READY_FD (``busy`` when another server holds the lock), imports the runtime and starts a
zygote (so no container waits for an interpreter), then freezes its heap.

Requests are served like the zygote serves monitors: a *spare*, forked before the request
comes, is blocked in ``accept``; it takes one connection, tells the server, serves it
(``runtime.cli_worker``) and exits, while the server forks the next spare. So calls run
concurrently, as runc's would, a slow one (a hook, a start that times out) holds up no other,
and the fork is off every request's path.

The server holds nothing that matters: containers are on disk, each with its own monitor. It
exits after ``CRID_RUNTIME_SERVER_IDLE`` seconds (default 60) without a request, on SIGTERM,
when its socket is removed or replaced (its root was deleted), or when its own code changed on
disk; workers finish what they took; the next call starts a fresh server.
"""

from __future__ import annotations

import fcntl
import gc
import os
import select
import signal
import socket
import sys
import time
from typing import Any

from runtime import cli_commands, libc
from runtime.cli import LOCK_NAME, namespace_ids, socket_path
from runtime.cli_worker import serve_connection
from runtime.errors import OCIRuntimeError
from runtime.state import process_start_time
from runtime.zygote import Zygote

IDLE_DEFAULT = 60.0
_TICK = 1.0
# What a spare tells the server on its pipe: it took a connection.
_TAKEN = b"t"
_MAX_SPARE_DEATHS = 5  # spares dying before taking anything, in a row: give up


class _Stop(Exception):
    """SIGTERM."""


class Server:
    """The spare-forking loop of one root; ``serve`` returns when the server should exit."""

    def __init__(self, root: str, listener: socket.socket, lock: int, idle: float) -> None:
        self.root = root
        self.listener = listener
        self.lock = lock
        self.idle = idle
        self.sock_id = _inode(root)
        self.namespaces = namespace_ids()
        self.zygote: Zygote | None = None
        self.code = CodeWatch()
        self.workers: set[int] = set()  # spares and workers, to reap
        self.spare: tuple[int, int] | None = None  # pid, read end of its pipe

    def serve(self) -> None:
        signal.signal(signal.SIGTERM, self._on_term)
        last, deaths = time.monotonic(), 0
        try:
            while deaths < _MAX_SPARE_DEATHS:
                if self.spare is None:
                    self.spare = self._fork_spare()
                _, pipe = self.spare
                if select.select([pipe], [], [], _TICK)[0]:
                    said = os.read(pipe, 1)
                    os.close(pipe)
                    self.spare = None
                    last, deaths = (time.monotonic(), 0) if said == _TAKEN else (last, deaths + 1)
                elif self._should_exit(time.monotonic() - last):
                    return
                self._reap()
        except _Stop:
            return
        finally:
            self._close()

    def _on_term(self, *_: Any) -> None:
        raise _Stop

    def _should_exit(self, idle_for: float) -> bool:
        return (idle_for >= self.idle or _inode(self.root) != self.sock_id
                or self.code.changed())

    def _zygote(self) -> Zygote | None:
        """The live zygote, started (again) when needed; None when it cannot be (workers then
        fork monitors themselves)."""
        if self.zygote is not None and process_start_time(self.zygote.pid) is None:
            self.zygote.close()
            self.zygote = None
        if self.zygote is None:
            try:
                self.zygote = Zygote.start()
            except OCIRuntimeError:
                return None
        return self.zygote

    def _fork_spare(self) -> tuple[int, int]:
        zygote = self._zygote()
        r, w = os.pipe2(os.O_CLOEXEC)
        # SIGTERM waits until the spare is recorded, so that _close always finds it.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    os.close(r)
                    self._spare(w, zygote)
                    code = 0
                finally:
                    os._exit(code)
            os.close(w)
            self.workers.add(pid)
            return pid, r
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

    def _spare(self, tell: int, zygote: Zygote | None) -> None:
        """In the forked spare: take one connection, tell the server, serve it."""
        taken = False

        def on_term(*_: Any) -> None:
            if not taken:  # still waiting: the server is going; once taken, finish the job
                raise SystemExit(0)

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        server = os.getppid()
        # A server killed outright cannot stop its spare: the kernel does.
        libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGTERM)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        if os.getppid() != server:
            return
        _set_comm("crid-runtime-w")
        os.close(self.lock)  # a worker outliving the server must not keep the root locked
        conn, _ = self.listener.accept()
        taken = True
        self.listener.close()
        os.write(tell, _TAKEN)
        os.close(tell)
        serve_connection(conn, zygote, self.namespaces)

    def _reap(self) -> None:
        for pid in list(self.workers):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.workers.discard(pid)

    def _close(self) -> None:
        """Stop taking connections: remove the socket (if still ours), stop the spare."""
        if _inode(self.root) == self.sock_id:
            path, dirfd = socket_path(self.root)
            try:
                os.unlink(path)
            except OSError:
                pass
            finally:
                if dirfd is not None:
                    os.close(dirfd)
        if self.spare is not None:
            pid, pipe = self.spare
            os.close(pipe)
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.listener.close()
        # The zygote is left to exit by itself when its socket closes, that is when this
        # process and the workers still using it are gone (Zygote.close would wait for them).


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
    server = Server(root, listener, lock, idle)
    gc.collect()
    gc.freeze()  # spares share the heap copy-on-write; their collections skip it
    server.serve()
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

    cli_commands.build_parsers()


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
