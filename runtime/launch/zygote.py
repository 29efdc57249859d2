"""The zygote: a pre-started, single-threaded Python process that forks container monitors.

crid's gRPC process is multi-threaded and must never fork. It starts one zygote
(``Zygote.start()``), which imports everything a monitor needs, freezes the heap
(``gc.freeze()``, so forks share it copy-on-write) and then serves requests on a
``SOCK_SEQPACKET`` socketpair. Each request is one datagram with its fds attached
(SCM_RIGHTS): one byte, ``D`` (deferred: the request is parsed and set up in the monitor's
set-up child) or ``B`` (brief), then ``runtime.launch.params.to_wire`` of the MonitorRequest and
of the index of the attached fds::

    {"reply": 0, "wait": 1 | None, "stdio": [2, 3, 4] | None, "preserved": [5, ...]}

Each request is taken by a *spare*: a monitor-to-be the zygote forked before the request
came, which has forked its own set-up child before the request came too
(``runtime.monitor.launch.monitor_ahead``). That child, blocked in ``recvmsg`` on the shared
socket, takes the request, tells the zygote (which forks the next spare meanwhile), sets up
and spawns the container's process and hands the monitor what it keeps; a brief request it
serves itself, as its monitor. The forks (dear with the zygote's heap) and the
monitor's own preparation are thus off the path of every request. Nobody answers but the
monitor (or the set-up child, when the set-up fails), on the reply fd. The zygote exits when
the socket closes (its owner died); monitors live on.
"""

from __future__ import annotations

import _thread
import array
import json
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

from runtime.errors import OCIRuntimeError
from runtime.launch import params
from runtime.linux import libc
from runtime.monitor.launch import MonitorFds, MonitorRequest

if TYPE_CHECKING:
    import subprocess

_MAX_FDS = 253  # SCM_MAX_FD: a request's own fds and those it preserves
_MAX_MSG = 1 << 20
# Plain ints, combined once here: or-ing socket's IntFlag members runs enum code, in the spare.
_PEEK_LENGTH = int(socket.MSG_PEEK | socket.MSG_TRUNC)
# A request that starts so is parsed, like all its set-up, in the monitor's throwaway set-up
# child (``monitor_ahead``): every page the long-lived monitor touches is a private copy.
# Brief ones (ExecSync) are served by that child itself, as their monitor.
_DEFERRED, _BRIEF = b"D", b"B"


class ZygoteError(OCIRuntimeError):
    """The zygote could not be started or has died."""


class Zygote:
    """Client handle of a running zygote; ``launch`` is safe to call from many threads."""

    def __init__(self, sock: socket.socket, proc: subprocess.Popen) -> None:
        self._sock = sock
        self._proc = proc
        self._lock = _thread.allocate_lock()

    @classmethod
    def start(cls, python: str = sys.executable, timeout: float = 30.0,
              env: dict[str, str] | None = None) -> Zygote:
        """Start ``python -m runtime.launch.zygote`` and wait until it is ready; ``env``: entries
        added to its environment, which every process it forks inherits (a caller's mark on
        its monitors). Raises ZygoteError."""
        # Imported here, not at the top: the zygote process itself must not carry them (every
        # monitor it forks shares, and is charged part of, its heap).
        import subprocess

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
        env = {**os.environ, **(env or {}), "PYTHONPATH": root}
        proc = subprocess.Popen([python, "-S", "-m", "runtime.launch.zygote", str(theirs.fileno())],
                                pass_fds=[theirs.fileno()], env=env, cwd="/",
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                # A process group of its own: a terminal's Ctrl-C (SIGINT to
                                # the foreground group) reaches the daemon, which closes it.
                                process_group=0)
        theirs.close()
        ours.settimeout(timeout)
        try:
            ready = ours.recv(16)
        except OSError as e:
            ready = str(e).encode()
        if ready != b"ready":
            proc.kill()
            proc.wait()
            ours.close()
            raise ZygoteError(f"starting the zygote: {ready.decode(errors='replace') or 'died'}")
        ours.settimeout(None)
        return cls(ours, proc)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def launch(self, request: MonitorRequest, fds: MonitorFds) -> None:
        """Ask for a monitor. Raises ZygoteError when the zygote is gone."""
        attached = [fds.reply] + ([fds.wait] if fds.wait is not None else [])
        index: dict[str, Any] = {"reply": 0, "wait": 1 if fds.wait is not None else None,
                                 "stdio": None}
        if fds.stdio is not None:
            index["stdio"] = list(range(len(attached), len(attached) + 3))
            attached += list(fds.stdio)
        if fds.preserved:
            index["preserved"] = list(range(len(attached), len(attached) + len(fds.preserved)))
            attached += list(fds.preserved)
        # The kind first, so the spare sees it without parsing (see _DEFERRED).
        head = _BRIEF if request.monitor.brief else _DEFERRED
        msg = head + params.to_wire(request, index)
        with self._lock:
            try:
                socket.send_fds(self._sock, [msg], attached)
            except OSError as e:
                raise ZygoteError(f"sending a request to the zygote (pid {self.pid}): {e}") from e

    def close(self) -> None:
        """Stop the zygote (monitors it started keep running)."""
        import subprocess

        self._sock.close()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _receive(sock: socket.socket) -> tuple[bytes, list[int]] | None:
    """The next request and its fds; None when the socket closed.

    The datagram's length is peeked first (MSG_TRUNC gives the whole length) so the buffer is
    as large as the request: a ``_MAX_MSG`` buffer, in the set-up child that may become a
    brief request's monitor, costs it pages of its own."""
    fds = array.array("i")
    size = sock.recv_into(bytearray(1), 1, _PEEK_LENGTH)
    msg, anc, _, _ = sock.recvmsg(min(max(size, 1), _MAX_MSG),
                                  socket.CMSG_SPACE(_MAX_FDS * fds.itemsize),
                                  socket.MSG_CMSG_CLOEXEC)
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    if not msg and not fds:
        return None
    return msg, list(fds)


def _parse(raw: bytes, fds: list[int]) -> tuple[MonitorRequest, MonitorFds]:
    """The request and its fds. Raises ValueError/KeyError/IndexError on a malformed one."""
    if raw[:1] not in (_DEFERRED, _BRIEF):
        raise ValueError(f"unknown request kind {raw[:1]!r}")
    request, index = params.from_wire(raw[1:])
    stdio = tuple(fds[i] for i in index["stdio"]) if index.get("stdio") else None
    wait = fds[index["wait"]] if index.get("wait") is not None else None
    preserved = tuple(fds[i] for i in index.get("preserved") or ())
    monitor_fds = MonitorFds(reply=fds[index["reply"]], wait=wait, stdio=stdio,  # type: ignore[arg-type]
                             preserved=preserved)
    return request, monitor_fds


# What a spare tells the zygote on its pipe: it took a request, or the socket closed.
_TAKEN, _CLOSED = b"t", b"c"
_MAX_SPARE_DEATHS = 3  # spares dying before taking anything, in a row: give up


def _spare(sock: socket.socket, tell: int) -> int:
    """A pre-forked monitor-to-be, whose own pre-forked set-up child takes one request and
    tells the zygote (``monitor_ahead``)."""
    from runtime.launch.spawners import make_spawner
    from runtime.monitor.launch import monitor_ahead

    os.setsid()  # a session of its own, as fork_monitor gives a monitor

    def take() -> tuple[bytes, list[int]] | None:
        received = _receive(sock)
        try:
            os.write(tell, _TAKEN if received is not None else _CLOSED)
        except BrokenPipeError:
            pass  # the zygote died while we waited: serve this last request all the same
        return received

    return monitor_ahead(take, _is_deferred, _parse, _report, make_spawner)


def _is_deferred(msg: bytes) -> bool:
    return msg.startswith(_DEFERRED)


def _next_spare(sock: socket.socket) -> bytes:
    """Fork a spare and wait until it has taken a request; returns what it said (b"" when it
    died first)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            code = _spare(sock, w)
        finally:
            os._exit(code)
    os.close(w)
    try:
        return os.read(r, 1)
    finally:
        os.close(r)


def prepare() -> None:
    """Import, compile and warm what the zygote's forks run, before its heap is frozen.

    Nothing here may import ``threading`` (``logging`` does): its at-fork hook runs in every
    fork and leaves each monitor ~400 KiB of private pages (tests/unit/runtime/test_zygote.py)."""
    import runtime.launch.spawners  # noqa: F401
    import runtime.monitor.launch  # noqa: F401  (import before freezing: forks share it)
    from runtime.records import compile_all

    compile_all()  # once here rather than in every child
    from runtime.launch.prewarm import prewarm
    prewarm()


def serve(sock: socket.socket) -> None:
    """The zygote's loop: one spare (monitor-to-be) at a time until the socket closes."""
    import gc

    from runtime.launch.procname import set_comm

    prepare()
    set_comm("crid-zygote")
    # Monitors are forked directly (not double-forked: one fork less per container); the
    # kernel reaps them when they exit because SIGCHLD is ignored here. A subreaper, so that
    # it reaps a brief request's monitor too: that is the spare's set-up child, orphaned when
    # the spare exits (else it would be left to the host's init, which may never reap).
    libc.set_child_subreaper()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    gc.collect()
    gc.freeze()
    sock.send(b"ready")
    deaths = 0
    while deaths < _MAX_SPARE_DEATHS:
        said = _next_spare(sock)
        if said == _CLOSED:
            return
        deaths = 0 if said == _TAKEN else deaths + 1


def _report(fds: list[int], error: Exception) -> None:
    if fds:
        line = json.dumps({"ok": False, "error": f"zygote: {error}", "type": "ZygoteError"})
        try:
            os.write(fds[0], line.encode() + b"\n")
        except OSError:
            pass


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    try:
        serve(sock)
    except Exception as e:
        try:
            sock.send(f"error: {e}".encode())
        except OSError:
            pass
        raise SystemExit(1) from e


if __name__ == "__main__":
    main()
