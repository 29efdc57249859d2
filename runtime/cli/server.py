"""The runtime server of one ``--root``: serves the ``crid-runtime`` calls of its clients.

``python -m runtime.cli.server ROOT READY_FD`` (started by ``runtime.cli.client`` on first use, in a
session of its own, stdio on /dev/null). It takes ``<root>/.crid-runtime.lock`` (flock; the
file holds its pid), listens on ``<root>/.crid-runtime.sock`` (mode 0600), says ``ready`` on
READY_FD (``busy`` when another server holds the lock), imports the runtime and starts a
zygote (so no container waits for an interpreter), then freezes its heap.

Requests are served by *workers*: forks of the server, each blocked in ``accept`` on the
shared socket, serving one connection at a time (``runtime.cli.worker``) and reporting on a
pipe when it takes one and when it is done. The server keeps one worker idle: when the last
idle one takes a connection it forks another (off that request's path), and idle extras
beyond two exit after a while. So calls run side by side, as runc's would, a slow one (a hook,
a start that times out) holds up no other, and a worker stays warm (its copy-on-write pages
are copied once, not per call, as a fresh fork per call would).

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

from runtime.cli import commands as cli_commands
from runtime.cli.client import LOCK_NAME, caller_context, socket_path
from runtime.cli.worker import serve_connection
from runtime.errors import OCIRuntimeError
from runtime.launch.procname import set_comm
from runtime.launch.zygote import Zygote
from runtime.linux import libc
from runtime.records import dataclass
from runtime.state import process_start_time

IDLE_DEFAULT = 60.0
_TICK = 1.0
_TAKEN, _DONE = b"t", b"d"  # what a worker tells the server
_MAX_WORKERS = 32
# Most calls take a few ms: when the last idle worker takes one, another is forked only if
# none is idle again this much later (or sequential calls would grow the pool).
_FORK_DELAY = 0.005
_SPARE_LINGER = 30.0  # seconds an idle worker beyond the second one lives on
_MAX_REQUESTS = 1000  # per worker, then it exits (the server forks a fresh one)
_MAX_STILLBORN = 5  # workers dying before taking anything, in a row: give up


class _Stop(Exception):
    """SIGTERM."""


@dataclass
class Worker:
    """The server's view of one worker."""

    pid: int
    pipe: int
    busy: bool = False
    served: int = 0
    idle_since: float = 0.0
    stopping: bool = False  # told to exit


class Server:
    """The worker pool of one root; ``serve`` returns when the server should exit."""

    def __init__(self, root: str, listener: socket.socket, lock: int, idle: float) -> None:
        self.root = root
        self.listener = listener
        self.lock = lock
        self.idle = idle
        self.sock_id = _inode(root)
        self.context = caller_context()
        self.zygote: Zygote | None = None
        self.code = CodeWatch()
        self.workers: dict[int, Worker] = {}  # by pipe fd
        self.dead: set[int] = set()  # exited workers to reap
        self.last = time.monotonic()
        self.stillborn = 0

    def serve(self) -> None:
        signal.signal(signal.SIGTERM, self._on_term)
        try:
            while self.stillborn < _MAX_STILLBORN:
                if self._needs_worker() and not (self.workers and self._reports(_FORK_DELAY)):
                    self._fork_worker()
                if not self._reports(_TICK) and self._should_exit():
                    return
                self._tend()
        except _Stop:
            return
        finally:
            self._close()

    def _on_term(self, *_: Any) -> None:
        raise _Stop

    def _needs_worker(self) -> bool:
        """No worker waits for a connection (and more may be forked)."""
        return len(self.workers) < _MAX_WORKERS and all(
            w.busy or w.stopping for w in self.workers.values())

    def _reports(self, timeout: float) -> bool:
        """Read what workers tell, waiting up to ``timeout`` s for something; whether any did."""
        ready = select.select(list(self.workers), [], [], timeout)[0]
        for pipe in ready:
            self._on_report(self.workers[pipe])
        return bool(ready)

    def _on_report(self, w: Worker) -> None:
        said = os.read(w.pipe, 64)
        self.last = time.monotonic()
        if not said:  # it exited (a request limit, SIGTERM, a crash)
            if not (w.served or w.stopping):
                self.stillborn += 1
            os.close(w.pipe)
            del self.workers[w.pipe]
            self.dead.add(w.pid)
            return
        self.stillborn = 0
        w.served += said.count(_TAKEN)
        w.busy = said[-1:] == _TAKEN
        w.idle_since = self.last

    def _should_exit(self) -> bool:
        if any(w.busy for w in self.workers.values()):
            return False
        return (time.monotonic() - self.last >= self.idle
                or _inode(self.root) != self.sock_id or self.code.changed())

    def _tend(self) -> None:
        """Reap exited workers, stop idle extras, and renew the pool if the zygote died."""
        for pid in list(self.dead):
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    self.dead.discard(pid)
            except ChildProcessError:
                self.dead.discard(pid)
        if self.zygote is not None and process_start_time(self.zygote.pid) is None:
            self.zygote.close()
            self.zygote = None  # workers hold its handle: replace them all
            self._stop_workers()
            return
        idle = sorted((w for w in self.workers.values() if not w.busy),
                      key=lambda w: w.idle_since)
        now = time.monotonic()
        for w in idle[:-2]:
            if now - w.idle_since > _SPARE_LINGER and not w.stopping:
                self._stop(w)

    def _stop_workers(self) -> None:
        """Idle workers exit now, busy ones after their request (see ``_worker``)."""
        for w in self.workers.values():
            self._stop(w)

    def _stop(self, w: Worker) -> None:
        w.stopping = True
        _signal(w.pid, signal.SIGTERM)

    def _zygote(self) -> Zygote | None:
        """The live zygote, started when needed; None when it cannot be (workers then fork
        monitors themselves)."""
        if self.zygote is None:
            try:
                self.zygote = Zygote.start()
            except OCIRuntimeError:
                return None
        return self.zygote

    def _fork_worker(self) -> None:
        zygote = self._zygote()
        r, w = os.pipe2(os.O_CLOEXEC)
        # SIGTERM waits until the worker is recorded, so that _close always finds it.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        try:
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    os.close(r)
                    self._worker(w, zygote)
                    code = 0
                finally:
                    os._exit(code)
            os.close(w)
            self.workers[r] = Worker(pid, r, idle_since=time.monotonic())
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})

    def _worker(self, tell: int, zygote: Zygote | None) -> None:
        """In the forked worker: take connections one at a time and serve them, telling the
        server; SIGTERM ends it at once when idle, after its request when busy."""
        state = {"taken": False, "stop": False}

        def on_term(*_: Any) -> None:
            if not state["taken"]:
                raise SystemExit(0)
            state["stop"] = True

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        server = os.getppid()
        # A server killed outright cannot stop its workers: the kernel does.
        libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGTERM)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        if os.getppid() != server:
            return
        set_comm("crid-runtime-w")
        os.close(self.lock)  # a worker outliving the server must not keep the root locked
        for pipe in self.workers:  # the server's ends of its siblings' pipes
            os.close(pipe)
        for _ in range(_MAX_REQUESTS):
            conn, _ = self.listener.accept()
            state["taken"] = True
            try:
                os.write(tell, _TAKEN)
            except OSError:
                state["stop"] = True  # the server is gone: serve this one, then go
            serve_connection(conn, zygote, self.context)
            try:
                os.write(tell, _DONE)
            except OSError:
                return
            state["taken"] = False
            if state["stop"]:
                return

    def _close(self) -> None:
        """Stop taking connections: remove the socket (if still ours), stop the workers."""
        if _inode(self.root) == self.sock_id:
            path, dirfd = socket_path(self.root)
            try:
                os.unlink(path)
            except OSError:
                pass
            finally:
                if dirfd is not None:
                    os.close(dirfd)
        self._stop_workers()
        self.listener.close()
        # The zygote is left to exit by itself when its socket closes, that is when this
        # process and the workers still using it are gone (Zygote.close would wait for them).


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


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
    set_comm("crid-runtime-s")
    _tell(ready_fd, b"ready")
    os.chdir("/")
    preload()
    server = Server(root, listener, lock, idle)
    gc.collect()
    gc.freeze()  # workers share the heap copy-on-write; their collections skip it
    server.serve()
    os.close(lock)
    return 0


def preload() -> None:
    """Import what the commands import lazily (they are written for a one-shot process) and
    build the parsers once, so that no request pays for it."""
    import runtime.cli.tty  # noqa: F401
    import runtime.features  # noqa: F401
    import runtime.lifecycle  # noqa: F401
    import runtime.linux.atomic  # noqa: F401
    from runtime.cgroups import Resources  # noqa: F401

    cli_commands.build_parsers()


def _tell(fd: int, what: bytes) -> None:
    try:
        os.write(fd, what)
    finally:
        os.close(fd)


def main() -> None:
    idle = float(os.environ.get("CRID_RUNTIME_SERVER_IDLE") or IDLE_DEFAULT)
    sys.exit(run(sys.argv[1], int(sys.argv[2]), idle))


if __name__ == "__main__":
    main()
