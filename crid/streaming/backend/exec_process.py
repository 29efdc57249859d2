"""Exec: a new process in a running container, through the runtime's exec (the zygote forks
its monitor; this process never forks), seen by the streaming server as fds.

Without a tty the process gets pipes of ours ("inherit" stdio: no copy through the monitor);
with a tty its pty master arrives on a console socket we listen on. Either way the monitor
reports the exit record on a wait pipe, and the process is signalled through a pidfd opened
right after the start, so a recycled pid is never hit.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
import struct
import termios
from pathlib import Path
from typing import Any

from crid.containers.runtime_errors import runtime_errors
from crid.errors import CridError
from crid.streaming.backend.fdwait import close_quietly, read_to_eof
from crid.streaming.backend.seams import ExecLauncher, ExecTarget
from crid.streaming.protocol import BackendError, ExecRequest, TerminalSize
from runtime.api import Created, listen_unix, read_exit_file
from runtime.api import ExecRequest as RuntimeExec

CONSOLE_TIMEOUT = 10.0
PIPE_SIZE = 1 << 20  # fewer, larger reads of a chatty process (the default pipe-max-size)
F_SETPIPE_SZ = 1031
EOT = b"\x04"


class ExecProcess:
    """ProcessHandle of a process exec'd in a container."""

    def __init__(self, launcher: ExecLauncher, created: Created, stdin: int | None,
                 stdout: int | None, stderr: int | None, tty: bool) -> None:
        self._launcher, self.created, self.tty = launcher, created, tty
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self._pidfd = _pidfd(created.pid)
        self._code: int | None = None
        self._waiter: asyncio.Future[int] | None = None

    def close_stdin(self) -> None:
        if self.stdin is None:
            return
        if self.tty:  # the pty's end of input; the master stays open for output
            with contextlib.suppress(OSError):
                os.write(self.stdin, EOT)
            return
        close_quietly(self.stdin)
        self.stdin = None

    def resize(self, size: TerminalSize) -> None:
        if self.tty and self.stdout is not None:
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.stdout, termios.TIOCSWINSZ,
                            struct.pack("HHHH", size.height, size.width, 0, 0))

    async def wait(self) -> int:
        if self._waiter is None:
            self._waiter = asyncio.ensure_future(self._read_exit())
        return await asyncio.shield(self._waiter)

    async def _read_exit(self) -> int:
        fd = self.created.wait_fd
        record = b""
        if fd is not None:
            os.set_blocking(fd, False)
            record = await read_to_eof(fd)
        self._code = _exit_code(record, self.created.exit_file)
        return self._code

    def kill(self) -> None:
        if self._code is None and self._pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    def close(self) -> None:
        """Closes our fds; a process still running is killed (an exec never outlives its
        session) and its exit file removed once the monitor has written it."""
        close_quietly(*{self.stdin, self.stdout, self.stderr} - {None})
        self.stdin = self.stdout = self.stderr = None
        if self._code is None:
            self.kill()
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                self._release()
                return
            asyncio.ensure_future(self._release_after_exit())
            return
        self._release()

    async def _release_after_exit(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.wait(), 30)
        self._release()

    def _release(self) -> None:
        close_quietly(self.created.wait_fd, self._pidfd)
        self._pidfd = None
        self.created = Created(self.created.id, self.created.pid, self.created.monitor_pid,
                               self.created.exit_file, self.created.attach_socket, None)
        with contextlib.suppress(Exception):
            self._launcher.release_exec(self.created)


def start_exec(launcher: ExecLauncher, target: ExecTarget, req: ExecRequest,
               console_dir: Path) -> ExecProcess:
    """Starts req.cmd in the container with the container's process settings (user, env,
    cwd, capabilities, seccomp ...) and the requested stdio. Blocking: call it in a thread.

    Raises:
        BackendError: the runtime refused or failed the exec.
    """
    process = _process(target.process, req)
    what = f"exec {list(req.cmd)} in container {target.container_id}"
    try:
        with runtime_errors(what):
            if req.tty:
                return _start_tty(launcher, target.container_id, process, req, console_dir)
            return _start_pipes(launcher, target.container_id, process, req)
    except CridError as e:
        raise BackendError(str(e)) from e


def _process(template: dict[str, Any], req: ExecRequest) -> dict[str, Any]:
    process = dict(template)
    process.update(args=list(req.cmd), terminal=req.tty)
    process.pop("consoleSize", None)
    if req.tty and not any(e.startswith("TERM=") for e in process.get("env", [])):
        process["env"] = [*process.get("env", []), "TERM=xterm"]  # as CRI-O and containerd
    return process


def _start_pipes(launcher: ExecLauncher, cid: str, process: dict[str, Any],
                 req: ExecRequest) -> ExecProcess:
    ours: list[int | None] = []
    theirs: list[int] = []
    try:
        for wanted, reading in ((req.stdin, True), (req.stdout, False), (req.stderr, False)):
            if not wanted:
                ours.append(None)
                theirs.append(os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC))
                continue
            r, w = os.pipe2(os.O_CLOEXEC)
            ours.append(w if reading else r)
            theirs.append(r if reading else w)
            if not reading:
                with contextlib.suppress(OSError):
                    fcntl.fcntl(r, F_SETPIPE_SZ, PIPE_SIZE)
        stdio = (theirs[0], theirs[1], theirs[2])
        created = launcher.exec(cid, RuntimeExec(process=process, stdio=stdio, wait_fd=True,
                                                 brief=True))
    except BaseException:
        close_quietly(*ours)
        raise
    finally:
        close_quietly(*theirs)
    return ExecProcess(launcher, created, ours[0], ours[1], ours[2], tty=False)


def _start_tty(launcher: ExecLauncher, cid: str, process: dict[str, Any], req: ExecRequest,
               console_dir: Path) -> ExecProcess:
    console_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = console_dir / f"{secrets.token_hex(8)}.sock"
    # The container's init connects and sends the master while exec() waits for its reply:
    # the connection waits in the backlog, so accepting afterwards is enough.
    listener = listen_unix(str(path), 1)
    try:
        created = launcher.exec(cid, RuntimeExec(process=process, console_socket=path,
                                                 wait_fd=True, brief=True))
        try:
            master = _receive_master(listener)
        except BaseException:
            _abandon(created)
            raise
    finally:
        listener.close()
        path.unlink(missing_ok=True)
    stdin = os.dup(master) if req.stdin else None
    return ExecProcess(launcher, created, stdin, master, None, tty=True)


def _receive_master(listener: socket.socket) -> int:
    listener.settimeout(CONSOLE_TIMEOUT)
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(CONSOLE_TIMEOUT)
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
    if not fds:
        raise OSError("console socket: no pty master received")
    os.set_inheritable(fds[0], False)
    return fds[0]


def _abandon(created: Created) -> None:
    with contextlib.suppress(OSError):
        os.kill(created.pid, signal.SIGKILL)
    close_quietly(created.wait_fd)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None  # already gone: the wait pipe reports its exit


def _exit_code(record: bytes, exit_file: str) -> int:
    try:
        return int(json.loads(record)["exit_code"])
    except (ValueError, KeyError, TypeError):
        pass
    try:
        status = read_exit_file(exit_file) if exit_file else None
    except (OSError, ValueError):
        status = None
    return status.exit_code if status is not None else 255
