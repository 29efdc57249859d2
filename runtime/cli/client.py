"""``crid-runtime``, the runc-compatible command line: a thin client of the runtime server.

Every command is run by the runtime server of its ``--root`` (``runtime.cli.server``): a
single-threaded Python process with the runtime library imported and a zygote started, which the
first call starts and which exits after an idle spell. Only this client starts per call, and it
imports nothing but ``posix``, ``_socket`` and ``_signal`` (``os`` alone would be a visible
share of it). It sends its arguments with its stdio and working directory (fds, SCM_RIGHTS) and
exits with the code the server answers; so the container gets the caller's own stdio and
relative paths mean what they mean to the caller, as with runc.

``run`` and ``exec`` in the foreground: the server hands back the process's pid and the read end
of its exit pipe (its monitor writes the exit record there); the client forwards signals to
the pid, reads the record, then asks the server (a fresh one, should the first have died
meanwhile) to finish: delete the container (``run`` without ``--keep``) and give the exit code.
All state is on disk and every container has its own monitor, so a server may die at any time
without losing a container; the next call starts another.

The command runs in this process instead (``runtime.cli.commands.main``) when it passes on
the caller's fds (``--preserve-fds``), when the server answers ``local`` (a terminal to
proxy; a caller in other namespaces than the server's, or running other code than the
server's, from another installation or work tree), when no server can be started, or with
``CRID_RUNTIME_SERVER=0`` in the environment.

Wire format (``SOCK_SEQPACKET`` on ``<root>/.crid-runtime.sock``, root-only), one datagram
each way and then one more from the server:

    request:  b"CRT1" NUL kind NUL context NUL record NUL arg NUL arg ...
              kind b"cmd" (record empty) or b"finish" (record: the exit record read);
              context: ``caller_context()``, the server's own or the answer is b"local";
              fds 0, 1, 2 and the working directory attached
    answers:  b"ack" (the request was taken), then b"exit <code>" | b"wait <pid>" (the exit
              pipe attached) | b"local"
"""

import _signal
import _socket
import posix
import sys
import time  # built in, and loaded at start-up anyway

from runtime.cli import DEFAULT_ROOT  # the package is loaded already: free

SOCKET_NAME = ".crid-runtime.sock"
LOCK_NAME = ".crid-runtime.lock"
MAGIC = b"CRT1"
NAMESPACES = ("mnt", "pid", "cgroup", "user")
SUN_PATH_MAX = 107
MAX_FDS = 4
FORWARDED_SIGNALS = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT,
                     _signal.SIGUSR1, _signal.SIGUSR2)
_GLOBAL_VALUE_FLAGS = ("--root", "--log", "--log-format", "--rootless")


class ServerUnavailable(Exception):
    """No server took the request (none could be started): the caller may run it itself."""


class ServerDied(Exception):
    """The server took the request and died before answering."""


def main(argv: list[str] | None = None) -> int:
    """Run one ``crid-runtime`` command; its exit code. (No ``from __future__ import
    annotations`` in this module: the client would pay for importing it.)"""
    argv = sys.argv[1:] if argv is None else list(argv)
    if posix.environ.get(b"CRID_RUNTIME_SERVER") == b"0" or _passes_fds(argv):
        return _local(argv)
    root, command = scan_globals(argv)
    forwarder = _Forwarder() if command in ("run", "exec") else None
    try:
        answer, fds = request(root, b"cmd", argv)
        if answer.startswith(b"wait ") and len(fds) == 1:
            forwarder = forwarder or _Forwarder()
            forwarder.target(int(answer[5:]))
            return _finish(root, argv, _read_all(fds[0]))
        _close_all(fds)
    except ServerUnavailable:
        answer = b"local"
    except ServerDied:
        return _died()
    finally:
        if forwarder is not None:
            forwarder.restore()
    if forwarder is not None and forwarder.pending:
        return 128 + forwarder.pending[0]  # a signal came before there was a process to take it
    if answer.startswith(b"exit "):
        return int(answer[5:])
    return _local(argv)


def _passes_fds(argv: list[str]) -> bool:
    """Whether the command may give the container this process's fds (``--preserve-fds``):
    only this process has them. (A command argument that merely looks so costs the server.)"""
    return any(a == "--preserve-fds" or a.startswith("--preserve-fds=") for a in argv)


def _finish(root: str, argv: list[str], record: bytes) -> int:
    """The foreground process ended with ``record``: have the container deleted (``run``)
    and learn the exit code, from a server or, failing one, here."""
    try:
        answer, fds = request(root, b"finish", argv, record)
        _close_all(fds)
    except ServerUnavailable:
        answer = b"local"
    except ServerDied:
        return _died()
    if answer.startswith(b"exit "):
        return int(answer[5:])
    from runtime.cli.commands import finish_command

    return finish_command(argv, record)


def _died() -> int:
    _say("crid-runtime: the runtime server died while running the command; "
         "the container, if any, is on disk (see `crid-runtime state`)")
    return 1


def exit_now(code: int) -> None:
    """Exit with ``code`` without the interpreter's finalisation (a good share of the client):
    stdout and stderr are flushed, and nothing else is left to clean up (the runtime
    registers no atexit handlers)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    posix._exit(code & 0xFF if code >= 0 else 1)


def _local(argv: list[str]) -> int:
    from runtime.cli.commands import main as run_here

    return run_here(argv)


def scan_globals(argv: list[str]) -> tuple[str, str]:
    """The ``--root`` and the command name, read from the global flags before the command
    (runc takes them only there; the server's parser allows no abbreviations either)."""
    root, i = DEFAULT_ROOT, 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--root="):
            root = arg[7:]
        elif arg in _GLOBAL_VALUE_FLAGS:
            if arg == "--root" and i + 1 < len(argv):
                root = argv[i + 1]
            i += 1
        elif not arg.startswith("-"):
            return root, arg
        i += 1
    return root, ""


def request(root: str, kind: bytes, argv: list[str],
            record: bytes = b"") -> tuple[bytes, list[int]]:
    """Send one request to the server of ``root`` (starting one when none listens); its
    final answer and the fds that came with it.

    Raises ServerUnavailable when no server took the request, ServerDied when one took it
    and vanished.
    """
    fields = [MAGIC, kind, caller_context(), record]
    fields += [a.encode("utf-8", "surrogateescape") for a in argv]
    data = b"\0".join(fields)
    try:
        cwd = posix.open(".", posix.O_PATH | posix.O_CLOEXEC)
    except OSError as e:
        raise ServerUnavailable(f"the working directory: {e}") from e
    stdio = [_usable(fd) for fd in (0, 1, 2)]
    try:
        for _ in range(4):  # a server between its last answer and its exit takes nothing
            sock = _connect(root) or _start_and_connect(root)
            try:
                if _handed_over(sock, data, [*stdio, cwd]):
                    return _answer(sock)
            finally:
                sock.close()
        raise ServerUnavailable
    finally:
        posix.close(cwd)
        for mine, fd in zip(stdio, (0, 1, 2), strict=True):
            if mine != fd:
                posix.close(mine)


def _handed_over(sock: _socket.socket, data: bytes, fds: list[int]) -> bool:
    """Send the request; whether the server acknowledged it (taken: it will be done)."""
    try:
        _send(sock, data, fds)
        answer, extra = _recv(sock)
    except OSError:  # reset, refused, too large: not taken
        return False
    _close_all(extra)
    return answer == b"ack"


def _answer(sock: _socket.socket) -> tuple[bytes, list[int]]:
    """The answer to a taken request. Raises ServerDied."""
    try:
        answer, fds = _recv(sock)
    except OSError as e:
        raise ServerDied from e
    if not answer:
        raise ServerDied
    return answer, fds


def caller_context() -> bytes:
    """The caller's namespaces and the code it runs (where ``runtime`` is): the server runs a
    command only for a caller with the same."""
    namespaces = ",".join(posix.readlink(f"/proc/self/ns/{ns}") for ns in NAMESPACES)
    return f"{namespaces};{_package_parent()}".encode("utf-8", "surrogateescape")


def _usable(fd: int) -> int:
    """``fd`` itself, or /dev/null when the caller has it closed (it cannot be sent)."""
    try:
        posix.fstat(fd)
        return fd
    except OSError:
        return posix.open("/dev/null", posix.O_RDWR | posix.O_CLOEXEC)


def socket_path(root: str) -> tuple[str, int | None]:
    """The server's socket path, fitting in sun_path (through /proc/self/fd when long), and
    the directory fd that path needs (close it after use)."""
    path = f"{root.rstrip('/') or '/'}/{SOCKET_NAME}"
    if len(path.encode()) <= SUN_PATH_MAX:
        return path, None
    dirfd = posix.open(root, posix.O_PATH | posix.O_CLOEXEC)
    return f"/proc/self/fd/{dirfd}/{SOCKET_NAME}", dirfd


def _connect(root: str) -> _socket.socket | None:
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    dirfd = None
    try:
        path, dirfd = socket_path(root)
        sock.connect(path)
        return sock
    except OSError:  # none listens (or the root is unusable: starting one says why)
        sock.close()
        return None
    finally:
        if dirfd is not None:
            posix.close(dirfd)


def _start_and_connect(root: str) -> _socket.socket:
    """Start a server for ``root`` and connect to it. Raises ServerUnavailable."""
    said = start_server(root)
    if said not in (b"ready", b"busy"):
        raise ServerUnavailable(said.decode(errors="replace"))
    # "busy": another server holds the root; it listens already or is about to.
    for _ in range(200):
        sock = _connect(root)
        if sock is not None:
            return sock
        time.sleep(0.01)
    raise ServerUnavailable("the runtime server does not listen")


def start_server(root: str) -> bytes:
    """Start ``python -m runtime.cli.server ROOT FD`` in a session of its own, nobody's child;
    what it said on the pipe FD: b"ready" (it listens), b"busy" (another server has the
    root) or an error message."""
    if not sys.executable:
        return b"no python interpreter to start the runtime server with"
    r, w = posix.pipe()
    env = dict(posix.environ)
    package_parent = _package_parent().encode()
    old = env.get(b"PYTHONPATH")
    env[b"PYTHONPATH"] = package_parent + (b":" + old if old else b"")
    pid = posix.fork()
    if pid == 0:
        _exec_server(root, r, w, env)
    posix.close(w)
    posix.waitpid(pid, 0)
    return _read_all(r).strip()


def _exec_server(root: str, r: int, w: int, env: dict[bytes, bytes]) -> None:
    """In the forked child: double-fork into a new session and exec the server."""
    code = 127
    try:
        posix.close(r)
        posix.setsid()
        if posix.fork() != 0:
            code = 0
            return
        null = posix.open("/dev/null", posix.O_RDWR)
        for fd in (0, 1, 2):
            posix.dup2(null, fd)
        # Nothing the caller left open (its pipes: a caller waiting for their EOF) may live
        # on in the server, only the pipe it reports on.
        posix.closerange(3, w)
        posix.closerange(w + 1, 1 << 20)
        posix.set_inheritable(w, True)
        posix.execve(sys.executable, [sys.executable, "-m", "runtime.cli.server", root, str(w)],
                     env)
    except BaseException as e:  # noqa: BLE001 - the parent reads the reason on the pipe
        try:
            posix.write(w, f"starting the runtime server: {e}".encode())
        except OSError:
            pass
    finally:
        posix._exit(code)


def _package_parent() -> str:
    """The directory holding the ``runtime`` package, so the server runs this same code."""
    path = __file__ if __file__.startswith("/") else f"{posix.getcwd()}/{__file__}"
    return path.rsplit("/", 3)[0]  # <parent>/runtime/cli/client.py


def _send(sock: _socket.socket, data: bytes, fds: list[int]) -> None:
    raw = b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)
    sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, raw)])


def _recv(sock: _socket.socket) -> tuple[bytes, list[int]]:
    """One datagram and the fds attached to it; (b"", []) at EOF."""
    data, anc, _, _ = sock.recvmsg(1 << 16, _socket.CMSG_SPACE(MAX_FDS * 4),
                                   _socket.MSG_CMSG_CLOEXEC)
    fds: list[int] = []
    for level, kind, raw in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += [int.from_bytes(raw[i:i + 4], sys.byteorder, signed=True)
                    for i in range(0, len(raw) - len(raw) % 4, 4)]
    return data, fds


def _read_all(fd: int) -> bytes:
    data = b""
    try:
        while chunk := posix.read(fd, 4096):
            data += chunk
    finally:
        posix.close(fd)
    return data


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        posix.close(fd)


def _say(line: str) -> None:
    try:
        posix.write(2, line.encode() + b"\n")
    except OSError:
        pass


class _Forwarder:
    """Forwards terminating signals to the foreground process once its pid is known (held
    back until then: the container is being created by the server meanwhile)."""

    def __init__(self) -> None:
        self.pid = 0
        self.pending: list[int] = []
        self.saved = {sig: _signal.signal(sig, self._on_signal) for sig in FORWARDED_SIGNALS}

    def _on_signal(self, sig: int, _frame: object) -> None:
        if self.pid:
            self._kill(sig)
        else:
            self.pending.append(sig)

    def target(self, pid: int) -> None:
        self.pid = pid
        for sig in self.pending:
            self._kill(sig)
        self.pending.clear()

    def _kill(self, sig: int) -> None:
        try:
            posix.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def restore(self) -> None:
        for sig, handler in self.saved.items():
            _signal.signal(sig, handler)


if __name__ == "__main__":
    exit_now(main())
