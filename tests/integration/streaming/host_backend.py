"""A StreamingBackend that runs host processes: the test double for crid's containers and pods.

`exec` runs the command as a host subprocess (a pty when tty), `attach` attaches to the pipes of
a long-running host process registered with `add_container`, `port_forward` connects to a
loopback port. Every process it starts is tracked by PID and killed by `close()`.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import signal
import socket
import struct
import subprocess
import termios

from crid.streaming.protocol import AttachRequest, BackendError, ExecRequest, TerminalSize


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


async def _wait_pid(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is not None:
        return _exit_code(proc.returncode)
    loop = asyncio.get_running_loop()
    fd = os.pidfd_open(proc.pid)
    try:
        while proc.poll() is None:
            fut = loop.create_future()
            loop.add_reader(fd, lambda f=fut: f.done() or f.set_result(None))
            try:
                await fut
            finally:
                loop.remove_reader(fd)
    finally:
        os.close(fd)
    return _exit_code(proc.returncode)


def _make_ctty() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class HostProcess:
    """ProcessHandle of an exec'd host process."""

    def __init__(self, proc: subprocess.Popen[bytes], stdin: int | None, stdout: int | None,
                 stderr: int | None, tty: bool) -> None:
        self.proc, self.tty = proc, tty
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.sizes: list[TerminalSize] = []

    def close_stdin(self) -> None:
        if self.stdin is None:
            return
        if self.tty:
            try:
                os.write(self.stdin, b"\x04")  # EOT: the tty's end of input
            except OSError:
                pass
            return
        os.close(self.stdin)
        self.stdin = None

    def resize(self, size: TerminalSize) -> None:
        self.sizes.append(size)
        if self.tty and self.stdout is not None:
            fcntl.ioctl(self.stdout, termios.TIOCSWINSZ,
                        struct.pack("HHHH", size.height, size.width, 0, 0))

    async def wait(self) -> int:
        return await _wait_pid(self.proc)

    def kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        fds = {self.stdin, self.stdout, self.stderr} - {None}
        for fd in fds:
            try:
                os.close(fd)  # type: ignore[arg-type]
            except OSError:
                pass
        self.stdin = self.stdout = self.stderr = None
        self.kill()
        self.proc.wait()


class HostAttach:
    """ProcessHandle of an attachment to a registered long-running process."""

    def __init__(self, proc: subprocess.Popen[bytes], stdin: int | None, stdout: int | None,
                 stderr: int | None) -> None:
        self.proc, self.stdin, self.stdout, self.stderr = proc, stdin, stdout, stderr

    def close_stdin(self) -> None:
        pass  # stdin_once is not modelled: the process keeps its stdin

    def resize(self, size: TerminalSize) -> None:
        pass

    async def wait(self) -> int:
        return await _wait_pid(self.proc)

    def kill(self) -> None:
        pass  # detaching never stops the container

    def close(self) -> None:
        for fd in {self.stdin, self.stdout, self.stderr} - {None}:
            os.close(fd)  # type: ignore[arg-type]
        self.stdin = self.stdout = self.stderr = None


class HostProcessBackend:
    """StreamingBackend over host processes and loopback ports (tests only)."""

    def __init__(self) -> None:
        self.containers: dict[str, subprocess.Popen[bytes]] = {}
        self.execs: list[HostProcess] = []
        self.port_map: dict[int, int] = {}

    async def exec(self, request: ExecRequest) -> HostProcess:
        try:
            if request.tty:
                return self._exec_tty(request)
            return self._exec_pipes(request)
        except OSError as e:
            raise BackendError(f"exec {list(request.cmd)} in {request.container_id}: {e}") from e

    def _exec_pipes(self, request: ExecRequest) -> HostProcess:
        pipe, devnull = subprocess.PIPE, subprocess.DEVNULL
        proc = subprocess.Popen(
            request.cmd, stdin=pipe if request.stdin else devnull,
            stdout=pipe if request.stdout else devnull, stderr=pipe if request.stderr else devnull,
            start_new_session=True)
        fds = [os.dup(f.fileno()) if f else None for f in (proc.stdin, proc.stdout, proc.stderr)]
        for f in (proc.stdin, proc.stdout, proc.stderr):
            if f:
                f.close()
        if fds[1] is not None:
            fcntl.fcntl(fds[1], 1031, 1 << 20)  # F_SETPIPE_SZ: fewer, larger reads
        handle = HostProcess(proc, fds[0], fds[1], fds[2], tty=False)
        self.execs.append(handle)
        return handle

    def _exec_tty(self, request: ExecRequest) -> HostProcess:
        master, slave = os.openpty()
        try:
            proc = subprocess.Popen(request.cmd, stdin=slave, stdout=slave, stderr=slave,
                                    start_new_session=True, preexec_fn=_make_ctty)
        finally:
            os.close(slave)
        handle = HostProcess(proc, os.dup(master) if request.stdin else None, master, None,
                             tty=True)
        self.execs.append(handle)
        return handle

    def add_container(self, container_id: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        """Start a long-running 'container' process whose stdio attach connects to."""
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        self.containers[container_id] = proc
        return proc

    async def attach(self, request: AttachRequest) -> HostAttach:
        proc = self.containers.get(request.container_id)
        if proc is None:
            raise BackendError(f"attach: no container {request.container_id}")
        def dup(f: object, wanted: bool) -> int | None:
            return os.dup(f.fileno()) if wanted and f is not None else None  # type: ignore
        return HostAttach(proc, dup(proc.stdin, request.stdin), dup(proc.stdout, request.stdout),
                          dup(proc.stderr, request.stderr))

    async def port_forward(self, pod_sandbox_id: str, port: int) -> socket.socket:
        target = self.port_map.get(port, port)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", target))
        except OSError as e:
            sock.close()
            raise BackendError(f"connect to port {port} in pod {pod_sandbox_id}: {e}") from e
        return sock

    def close(self) -> None:
        for handle in self.execs:
            handle.kill()
        for proc in self.containers.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            for f in (proc.stdin, proc.stdout, proc.stderr):
                if f:
                    f.close()
