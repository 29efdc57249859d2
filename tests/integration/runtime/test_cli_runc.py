"""crid-runtime as runc's callers use it: flags, exit codes, state/list JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.runtime.clikit import SCRIPT, cli, cli_env, stop_server
from tests.integration.runtime.lifekit import PREFIX, wait_for, wait_gone, write_bundle

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture(autouse=True)
def _stop_servers(tmp_path: Path) -> Iterator[None]:
    """Each test's roots get a runtime server on first use: stop them with the test."""
    yield
    for root in (tmp_path, tmp_path / "root"):
        stop_server(root)


def test_create_start_state_kill_delete(tmp_path: Path) -> None:
    root, cid = tmp_path / "root", PREFIX + "cli"
    bundle = write_bundle(tmp_path / "b", ["sleep", "300"])
    r = cli(root, "create", "--bundle", str(bundle), "--pid-file", str(tmp_path / "pid"), cid,
            detached=True)
    assert r.returncode == 0
    pid = int((tmp_path / "pid").read_text())
    state = json.loads(cli(root, "state", cid).stdout)
    assert set(state) == {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
                          "owner"}
    assert (state["id"], state["pid"], state["status"], state["bundle"]) == (
        cid, pid, "created", str(bundle))
    assert cli(root, "start", cid).returncode == 0
    assert json.loads(cli(root, "state", cid).stdout)["status"] == "running"
    listed = json.loads(cli(root, "list", "--format", "json").stdout)
    assert [(c["id"], c["status"]) for c in listed] == [(cid, "running")]
    assert cli(root, "list", "-q").stdout.split() == [cid]
    r = cli(root, "delete", cid)
    assert r.returncode == 1 and "running" in r.stderr
    assert cli(root, "kill", cid, "KILL").returncode == 0
    assert wait_gone(pid)
    stopped = json.loads(cli(root, "state", cid).stdout)
    assert (stopped["status"], stopped["pid"]) == ("stopped", 0)
    assert cli(root, "delete", cid).returncode == 0
    r = cli(root, "state", cid)
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_run_foreground_exit_code_and_stdio(tmp_path: Path) -> None:
    root, cid = tmp_path / "root", PREFIX + "clirun"
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", "echo out; echo err >&2; exit 42"])
    r = cli(root, "run", cid, cwd=bundle)
    assert (r.returncode, r.stdout, r.stderr) == (42, "out\n", "err\n")
    assert cli(root, "list", "-q").stdout == "\n"


def test_run_detached_exec_and_force_delete(tmp_path: Path) -> None:
    root, cid = tmp_path / "root", PREFIX + "clidet"
    bundle = write_bundle(tmp_path / "b", ["sleep", "300"])
    assert cli(root, "run", "-d", "-b", str(bundle), cid, detached=True).returncode == 0
    r = cli(root, "exec", cid, "sh", "-c", "echo in-$(hostname); exit 5")
    assert (r.returncode, r.stdout) == (5, "in-crt-life-box\n")
    proc = tmp_path / "p.json"
    proc.write_text(json.dumps({"args": ["cat", "/etc/group"], "cwd": "/"}))
    r = cli(root, "exec", "--process", str(proc), cid)
    assert r.stdout.startswith("root:x:0:")
    pids = json.loads(cli(root, "ps", "--format", "json", cid).stdout)
    assert len(pids) >= 1
    assert cli(root, "delete", "--force", cid).returncode == 0
    assert all(wait_gone(p) for p in pids)


def test_errors_and_log_json(tmp_path: Path) -> None:
    root = tmp_path / "root"
    log = tmp_path / "runtime.log"
    r = cli(root, "--log", str(log), "--log-format", "json", "start", PREFIX + "missing")
    assert r.returncode == 1
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and "does not exist" in entry["msg"]
    bundle = write_bundle(tmp_path / "b", ["true"], ociVersion="banana")
    r = cli(root, "create", "-b", str(bundle), PREFIX + "bad")
    assert r.returncode == 1 and "ociVersion" in r.stderr
    assert cli(root, "kill", PREFIX + "missing", "NOSUCHSIG").returncode == 1


def test_features_json(tmp_path: Path) -> None:
    f = json.loads(cli(tmp_path, "features").stdout)
    assert f["ociVersionMax"] == "1.2.0"


def test_terminal_without_console_socket(tmp_path: Path) -> None:
    root, cid = tmp_path / "root", PREFIX + "clitty"
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", "tty; exit 4"], process__terminal=True)
    r = cli(root, "run", "-b", str(bundle), cid)
    assert r.returncode == 4
    assert r.stdout.replace("\r", "") == "/dev/pts/0\n"
    bundle = write_bundle(tmp_path / "b2", ["sleep", "300"])
    assert cli(root, "run", "-d", "-b", str(bundle), cid + "2", detached=True).returncode == 0
    r = cli(root, "exec", "-t", cid + "2", "sh", "-c", "tty; exit 6")
    assert (r.returncode, r.stdout.replace("\r", "")) == (6, "/dev/pts/0\n")
    r = cli(root, "exec", "-t", "-d", cid + "2", "true")
    assert r.returncode == 1 and "console-socket" in r.stderr
    assert cli(root, "delete", "-f", cid + "2").returncode == 0


@pytest.mark.parametrize("server", ["1", "0"])
def test_preserve_fds(tmp_path: Path, server: str) -> None:
    """The caller's fds 3 and 4 reach `run`'s and `exec`'s processes as 3 and 4 (from a
    caller with a server too: the command then runs in the caller, which has the fds)."""
    root, cid = tmp_path / "root", PREFIX + "clipf"
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", "head -n1 <&3; head -n1 <&4; sleep 300"])
    (tmp_path / "one").write_text("one\n")
    (tmp_path / "two").write_text("two\n")
    env = cli_env(CRID_RUNTIME_SERVER=server)

    def call(out: Path, *args: str) -> int:  # the shell opens the caller's 3 and 4
        with open(out, "w") as sink:
            return subprocess.run(
                ["sh", "-c", 'a=$1 b=$2; shift 2; exec "$@" 3<"$a" 4<"$b"', "sh",
                 tmp_path / "one", tmp_path / "two",
                 sys.executable, str(SCRIPT), "--root", str(root), *args],
                stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, env=env, timeout=60,
            ).returncode

    assert call(tmp_path / "run.out", "run", "-d", "--preserve-fds", "2", "-b", str(bundle),
                cid) == 0
    assert call(tmp_path / "exec.out", "exec", "--preserve-fds=2", cid, "sh", "-c",
                "head -n1 <&3; head -n1 <&4; ls /proc/self/fd") == 0
    assert (tmp_path / "exec.out").read_text().split() == ["one", "two", *"012345"]
    wait_for(lambda: len((tmp_path / "run.out").read_text().split()) >= 2, 10.0)
    assert (tmp_path / "run.out").read_text().split() == ["one", "two"]
    r = cli(root, "exec", "--preserve-fds", "1", cid, "true", env=env)
    assert r.returncode == 1 and "fd 3 is not open" in r.stderr
    assert cli(root, "delete", "--force", cid, env=env).returncode == 0
