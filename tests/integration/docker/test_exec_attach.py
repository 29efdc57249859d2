"""Exec and attach over hijacked connections: multiplexed frames without a tty, raw bytes
with one, stdin with half-close, exit codes; `docker run -it` under a pseudo-terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import struct
import termios
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.integration.docker.conftest import DOCKER_CLI, DockerRig, until


@pytest.fixture
def rig(docker_rig: DockerRig) -> DockerRig:
    docker_rig.cli("pull", "-q", "busybox")
    return docker_rig


def test_exec_output_streams_and_exit_code(rig: DockerRig) -> None:
    rig.cli("run", "-d", "--name", "box", "busybox", "sleep", "600")
    out = rig.cli("exec", "box", "sh", "-c", "echo out; echo err >&2; exit 5", check=False)
    assert (out.returncode, out.stdout, out.stderr) == (5, "out\n", "err\n")
    fed = rig.cli("exec", "-i", "box", "sh", "-c", "tr a-z A-Z; echo done",
                  input=b"hello\nworld\n")
    assert fed.stdout == "HELLO\nWORLD\ndone\n"
    env = rig.cli("exec", "-e", "X=1", "-w", "/tmp", "-u", "1000:1000", "box",
                  "sh", "-c", 'echo "$X $(pwd) $(id -u):$(id -g)"')
    assert env.stdout == "1 /tmp 1000:1000\n"
    rig.cli("exec", "-d", "box", "sh", "-c", "echo detached > /tmp/mark")
    assert until(lambda: rig.cli("exec", "box", "cat", "/tmp/mark", check=False).stdout
                  ) == "detached\n"
    missing = rig.cli("exec", "box", "/no/such/binary", check=False)
    assert missing.returncode in (126, 127), missing
    rig.cli("stop", "-t", "0", "box")
    stopped = rig.cli("exec", "box", "true", check=False)
    assert stopped.returncode != 0 and "is not running" in stopped.stderr
    rig.cli("rm", "box")


def test_docker_py_exec_run_demux_and_inspect(rig: DockerRig) -> None:
    client = rig.client()
    try:
        c = client.containers.run("busybox", ["sleep", "600"], detach=True, name="py-exec")
        result = client.containers.get("py-exec").exec_run(
            ["sh", "-c", "echo out; echo err >&2; exit 4"], demux=True)
        assert result.exit_code == 4
        assert result.output == (b"out\n", b"err\n")
        tty = c.exec_run(["sh", "-c", "tty; echo $TERM"], tty=True)
        assert tty.exit_code == 0
        assert tty.output.replace(b"\r\n", b"\n").startswith(b"/dev/pts/")
        exec_id = client.api.exec_create(c.id, ["sh", "-c", "exit 9"])["Id"]
        client.api.exec_start(exec_id)
        info = client.api.exec_inspect(exec_id)
        assert (info["Running"], info["ExitCode"]) == (False, 9)
        c.remove(force=True)
    finally:
        client.close()


def test_run_rm_with_stdin_and_exit_code(rig: DockerRig) -> None:
    proc = rig.cli("run", "--rm", "-i", "busybox", "sh", "-c", "cat; exit 2",
                   input=b"piped in\n", check=False)
    assert (proc.returncode, proc.stdout) == (2, "piped in\n")
    assert rig.cli("ps", "-aq").stdout == ""


def test_attach_to_a_running_container_sees_new_output(rig: DockerRig) -> None:
    rig.cli("run", "-d", "--name", "ticker", "busybox", "sh", "-c",
            "sleep 1; for i in 1 2 3; do echo tick$i; sleep 0.2; done")
    attached = rig.cli("attach", "ticker", check=False)
    assert attached.returncode == 0, attached
    assert "tick3\n" in attached.stdout
    rig.cli("rm", "ticker")


class _Pty:
    """The docker CLI on a pseudo-terminal; ``fd`` is the terminal's master end."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid, self.fd = pid, fd

    def exit_code(self) -> int:
        """Read to the terminal's end, then reap the CLI: its exit code."""
        _expect_eof(self.fd)
        _, status = os.waitpid(self.pid, 0)
        self.pid = 0
        return os.waitstatus_to_exitcode(status)


@contextmanager
def _pty_child(rig: DockerRig, *args: str) -> Iterator[_Pty]:
    """The docker CLI on a new pseudo-terminal of 33 rows and 111 columns; killed and reaped
    afterwards unless ``exit_code`` reaped it."""
    pid, master = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 111, 0, 0))
        os.execve(DOCKER_CLI, [DOCKER_CLI, *args], rig.env())
    child = _Pty(pid, master)
    try:
        yield child
    finally:
        if child.pid:
            os.kill(child.pid, 9)
            os.waitpid(child.pid, 0)
        os.close(master)


def test_run_it_under_a_pty(rig: DockerRig) -> None:
    """An interactive shell: prompt, commands echoed by the container's tty, the terminal's
    size passed on, exit code."""
    with _pty_child(rig, "run", "--rm", "-it", "--name", "tty", "busybox", "sh") as tty:
        _expect(tty.fd, b"# ")
        os.write(tty.fd, b"echo $((6*7)); stty size\r")
        seen = _expect(tty.fd, b"33 111")
        assert b"42" in seen
        os.write(tty.fd, b"exit 3\r")
        assert tty.exit_code() == 3, seen
    until(lambda: rig.cli("ps", "-aq").stdout == "")  # --rm: removed after the exit


def test_exec_it_gets_the_terminal_size(rig: DockerRig) -> None:
    rig.cli("run", "-d", "--name", "sized", "busybox", "sleep", "600")
    # The CLI sends the size just after the start, as Docker's 20.10 client does: wait for it.
    with _pty_child(rig, "exec", "-it", "sized", "sh", "-c",
                    'until [ "$(stty size 2>/dev/null)" = "33 111" ]; do sleep 0.1; '
                    "done; echo sized; exit 4") as tty:
        _expect(tty.fd, b"sized")
        assert tty.exit_code() == 4
    rig.cli("rm", "-f", "sized")


def test_run_it_ctrl_c_reaches_the_container(rig: DockerRig) -> None:
    with _pty_child(rig, "run", "--rm", "-it", "busybox", "sh", "-c",
                    "trap 'echo caught; exit 130' INT; echo ready; "
                    "while true; do sleep 0.1; done") as tty:
        _expect(tty.fd, b"ready")
        os.write(tty.fd, b"\x03")
        _expect(tty.fd, b"caught")
        assert tty.exit_code() == 130


def test_bad_exec_bodies_are_400(rig: DockerRig) -> None:
    rig.cli("run", "-d", "--name", "target", "busybox", "sleep", "600")
    client = rig.client()
    try:
        for body in ({"Cmd": "not-a-list"}, {"Cmd": []}, {"Cmd": ["true"], "Tty": "yes"},
                     {"Cmd": ["true"], "Env": [1]}):
            resp = client.api._post_json(client.api._url("/containers/target/exec"), data=body)
            assert resp.status_code == 400, (body, resp.text)
            assert json.loads(resp.text)["message"]
    finally:
        client.close()
    rig.cli("rm", "-f", "target")


def _expect(fd: int, want: bytes, timeout: float = 30) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while want not in got:
        left = deadline - time.monotonic()
        assert left > 0, f"never saw {want!r}; got {got!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            assert chunk, f"EOF before {want!r}; got {got!r}"
            got += chunk
    return got


def _expect_eof(fd: int, timeout: float = 30) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no EOF; got {got!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                return got
            if not chunk:
                return got
            got += chunk


def test_run_it_detach_keys_leave_it_running(rig: DockerRig) -> None:
    """Ctrl-P Ctrl-Q: the CLI detaches, the shell lives on; `docker attach` gets it back."""
    with _pty_child(rig, "run", "-it", "--name", "detached", "busybox", "sh") as tty:
        _expect(tty.fd, b"# ")
        os.write(tty.fd, b"\x10\x11")
        assert tty.exit_code() == 0
    assert json.loads(rig.cli("inspect", "detached").stdout)[0]["State"]["Running"]
    with _pty_child(rig, "attach", "detached") as tty:
        os.write(tty.fd, b"echo back-$((40+2))\r")
        _expect(tty.fd, b"back-42")
        os.write(tty.fd, b"exit 6\r")
        assert tty.exit_code() == 6
    rig.cli("rm", "detached")
