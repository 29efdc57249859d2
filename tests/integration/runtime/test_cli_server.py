"""crid-runtime's runtime server: started on first use, shared by concurrent calls, and
expendable: killed, stale or gone, no container and no exit code is lost."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.cli.client import MAGIC
from tests.integration.runtime.clikit import (
    REPO,
    SCRIPT,
    cli,
    cli_env,
    server_pid,
    socket_of,
    stop_server,
)
from tests.integration.runtime.lifekit import PREFIX, wait_for, wait_gone, write_bundle

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    r = tmp_path / "root"
    yield r
    for leftover in json.loads(cli(r, "list", "--format", "json").stdout or "[]"):
        cli(r, "delete", "--force", leftover["id"])
    stop_server(r)


def _servers_of(root: Path) -> list[int]:
    """Server processes of ``root`` (not their spares and workers, named crid-runtime-w)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if b"runtime.cli.server" in args and str(root).encode() in args and \
                    Path(f"/proc/{entry}/comm").read_text() == "crid-runtime-s\n":
                out.append(int(entry))
    return out


def _popen(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(SCRIPT), "--root", str(root), *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env(), cwd=REPO)


def _status(root: Path, cid: str) -> str:
    r = cli(root, "state", cid)
    return json.loads(r.stdout)["status"] if r.returncode == 0 else ""


def test_started_on_first_use_then_reused(root: Path) -> None:
    assert not root.exists()
    r = cli(root, "state", PREFIX + "nothing")
    assert (r.returncode, r.stderr) == (
        1, f"crid-runtime: container {PREFIX}nothing does not exist\n")
    pid = server_pid(root)
    assert pid is not None
    assert Path(f"/proc/{pid}/comm").read_text() == "crid-runtime-s\n"
    assert stat.S_IMODE(os.stat(socket_of(root)).st_mode) == 0o600
    assert cli(root, "list", "-q").returncode == 0
    assert server_pid(root) == pid


def test_concurrent_first_calls_share_one_server(root: Path, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b", ["echo", "hi"])
    procs = [_popen(root, "run", "-b", str(bundle), f"{PREFIX}conc{i}") for i in range(6)]
    results = [(p.wait(60), p.stdout.read(), p.stderr.read())  # type: ignore[union-attr]
               for p in procs]
    assert results == [(0, "hi\n", "")] * 6
    assert len(_servers_of(root)) == 1
    assert cli(root, "list", "-q").stdout == "\n"


def test_containers_survive_a_killed_server(root: Path, tmp_path: Path) -> None:
    cid = PREFIX + "survive"
    bundle = write_bundle(tmp_path / "b", ["sleep", "300"])
    assert cli(root, "run", "-d", "-b", str(bundle), cid, detached=True).returncode == 0
    first = stop_server(root, signal.SIGKILL)
    assert first is not None
    assert socket_of(root).exists()  # left behind: stale from now on
    assert _status(root, cid) == "running"
    second = server_pid(root)
    assert second not in (None, first)
    r = cli(root, "exec", cid, "sh", "-c", "echo again; exit 3")
    assert (r.returncode, r.stdout) == (3, "again\n")
    pid = json.loads(cli(root, "state", cid).stdout)["pid"]
    assert cli(root, "delete", "--force", cid).returncode == 0
    assert wait_gone(pid)


def test_foreground_run_outlives_its_server(root: Path, tmp_path: Path) -> None:
    """The client holds the exit pipe: the code still arrives, and a new server deletes."""
    cid = PREFIX + "fgkill"
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", "sleep 1; echo done; exit 7"])
    proc = _popen(root, "run", "-b", str(bundle), cid)
    assert wait_for(lambda: _status(root, cid) == "running", 10.0)
    assert stop_server(root, signal.SIGKILL) is not None
    assert proc.wait(30) == 7
    assert proc.stdout.read() == "done\n"  # type: ignore[union-attr]
    r = cli(root, "state", cid)
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_signals_reach_the_foreground_container(root: Path, tmp_path: Path) -> None:
    cid = PREFIX + "sig"
    script = 'trap "echo got-term; exit 9" TERM; while true; do sleep 0.05; done'
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", script])
    proc = _popen(root, "run", "-b", str(bundle), cid)
    assert wait_for(lambda: _status(root, cid) == "running", 10.0)
    time.sleep(0.2)  # the trap is set by the shell's first line
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 9
    assert proc.stdout.read() == "got-term\n"  # type: ignore[union-attr]


def test_stale_socket_is_replaced(root: Path) -> None:
    root.mkdir(mode=0o711)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    stale.bind(str(socket_of(root)))
    stale.close()  # the file stays; nobody listens: connecting is refused
    assert cli(root, "list", "-q").returncode == 0
    assert server_pid(root) is not None


def test_idle_server_exits_and_removes_its_socket(root: Path) -> None:
    assert cli(root, "list", env=cli_env(CRID_RUNTIME_SERVER_IDLE="0.5")).returncode == 0
    assert server_pid(root) is not None
    assert wait_for(lambda: server_pid(root) is None and not socket_of(root).exists(), 10.0)
    assert cli(root, "list", "-q").returncode == 0  # and the next call starts another
    assert server_pid(root) is not None


def test_removed_socket_stops_the_server(root: Path) -> None:
    assert cli(root, "list").returncode == 0
    pid = server_pid(root)
    os.unlink(socket_of(root))
    assert pid is not None and wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 10.0)


def test_changed_code_stops_the_server(root: Path) -> None:
    assert cli(root, "list").returncode == 0
    pid = server_pid(root)
    module = REPO / "runtime" / "cli" / "tty.py"
    st = os.stat(module)
    os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert pid is not None and wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 10.0)


def test_garbage_requests_are_dropped(root: Path) -> None:
    assert cli(root, "list").returncode == 0
    pid = server_pid(root)
    for payload in (b"hello", MAGIC + b"\0cmd", b"\0" * 100):
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
            s.connect(str(socket_of(root)))
            s.sendall(payload)
            assert s.recv(100) == b""  # closed without an "ack": nothing was done
    assert server_pid(root) == pid
    assert cli(root, "list", "-q").returncode == 0


def test_without_server(root: Path, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", "echo local; exit 5"])
    r = cli(root, "run", "-b", str(bundle), PREFIX + "local",
            env=cli_env(CRID_RUNTIME_SERVER="0"))
    assert (r.returncode, r.stdout) == (5, "local\n")
    assert server_pid(root) is None and not socket_of(root).exists()


def test_caller_in_another_mount_namespace_runs_locally(root: Path, tmp_path: Path) -> None:
    """Its paths may mean other things to the server: the command runs in the caller."""
    assert cli(root, "list").returncode == 0
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", "echo elsewhere; exit 6"])
    r = subprocess.run(["unshare", "-m", sys.executable, str(SCRIPT), "--root", str(root),
                        "run", "-b", str(bundle), PREFIX + "otherns"],
                       capture_output=True, text=True, env=cli_env(), timeout=60)
    assert (r.returncode, r.stdout) == (6, "elsewhere\n")


def _slow_start(root: Path, tmp_path: Path, cid: str) -> subprocess.Popen[str]:
    """Create a container whose ``start`` takes 3 s and start it; returns once it runs (and
    the start is still in its hook)."""
    bundle = write_bundle(tmp_path / "b", ["sleep", "300"],
                          hooks={"poststart": [{"path": "/bin/sleep", "args": ["sleep", "3"]}]})
    assert cli(root, "create", "-b", str(bundle), cid, detached=True).returncode == 0
    slow = _popen(root, "start", cid)
    assert wait_for(lambda: _status(root, cid) == "running", 10.0)
    return slow


def test_a_slow_call_holds_up_no_other(root: Path, tmp_path: Path) -> None:
    slow = _slow_start(root, tmp_path, PREFIX + "slow")
    assert slow.poll() is None  # still in its hook, while state was answered
    assert slow.wait(30) == 0


def test_a_stopped_server_finishes_what_it_took(root: Path, tmp_path: Path) -> None:
    cid = PREFIX + "stopmid"
    slow = _slow_start(root, tmp_path, cid)
    first = stop_server(root)
    assert first is not None and slow.poll() is None
    assert slow.wait(30) == 0
    assert _status(root, cid) == "running"
    assert server_pid(root) not in (None, first)


def test_sequential_calls_keep_the_pool_small(root: Path) -> None:
    for _ in range(10):
        assert cli(root, "list", "-q").returncode == 0
    server = server_pid(root)
    workers = [p for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == server
               and _comm(int(p)) == "crid-runtime-w"]  # not its zygote
    assert 1 <= len(workers) <= 2


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError):
        return 0


def test_relative_console_socket_and_pid_file(root: Path, tmp_path: Path) -> None:
    """They mean the caller's cwd, whatever the server's: the pty master arrives on the
    caller's socket, the pid file in the caller's directory."""
    cid = PREFIX + "console"
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", "tty; sleep 300"],
                          process__terminal=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(tmp_path / "console.sock"))
        listener.listen(1)
        r = cli(root, "run", "-d", "--console-socket", "console.sock", "--pid-file", "pid",
                "-b", str(bundle), cid, cwd=tmp_path, detached=True)
        assert r.returncode == 0
        listener.settimeout(10)
        conn, _ = listener.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
    master = fds[0]
    try:
        out = b""
        while b"\n" not in out:
            out += os.read(master, 1024)
    finally:
        os.close(master)
    assert out.replace(b"\r", b"") == b"/dev/pts/0\n"
    assert int((tmp_path / "pid").read_text()) == json.loads(cli(root, "state", cid).stdout)["pid"]


def test_the_server_keeps_none_of_the_first_callers_files(root: Path) -> None:
    """A pipe the caller left open (inherited) must reach EOF when the call is over."""
    r, w = os.pipe()
    try:
        subprocess.run([sys.executable, str(SCRIPT), "--root", str(root), "list"],
                       pass_fds=[w], env=cli_env(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=60, check=True)
        os.close(w)
        w = -1
        assert server_pid(root) is not None
        assert select.select([r], [], [], 10)[0] and os.read(r, 1) == b""
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_workers_hold_no_exit_pipes(root: Path, tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b", ["true"])
    for i in range(3):
        assert cli(root, "run", "-b", str(bundle), f"{PREFIX}pipes{i}").returncode == 0
    server = server_pid(root)
    for pid in [p for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == server
                and _comm(int(p)) == "crid-runtime-w"]:
        fds = os.listdir(f"/proc/{pid}/fd")
        pipes = [fd for fd in fds if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("pipe:")]
        assert len(pipes) == 1  # its own report pipe to the server


def test_a_caller_running_other_code_runs_locally(root: Path, tmp_path: Path) -> None:
    """Another installation or work tree on the same root: never served by this server."""
    assert cli(root, "list").returncode == 0
    server = server_pid(root)
    other = tmp_path / "other"
    shutil.copytree(REPO / "runtime", other / "runtime",
                    ignore=shutil.ignore_patterns("__pycache__"))
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", "echo other; exit 4"])
    r = subprocess.run([sys.executable, str(SCRIPT), "--root", str(root), "run", "-b",
                        str(bundle), PREFIX + "othercode"], capture_output=True, text=True,
                       env=cli_env(PYTHONPATH=str(other)), timeout=60)
    assert (r.returncode, r.stdout) == (4, "other\n")
    assert server_pid(root) == server
