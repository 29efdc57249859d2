"""The monitor's I/O: CRI log records (F and P), reopen after rotation, attach streams,
stdin_once, terminal resize, and exec under a monitor of its own."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from runtime.launch.zygote import Zygote
from runtime.lifecycle import CreateRequest, ExecRequest, Runtime
from runtime.monitor import AttachClient, framing
from tests.integration.runtime.lifekit import (  # noqa: F401  (fixtures)
    PREFIX,
    runtime_fixture,
    write_bundle,
    zygote_fixture,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

RECORD = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) ([PF]) (.*)$")


def records(path: Path) -> list[tuple[str, str, bytes]]:
    out = []
    for line in path.read_bytes().split(b"\n")[:-1]:
        m = RECORD.match(line)
        assert m, line[:100]
        out.append((m.group(1).decode(), m.group(2).decode(), m.group(3)))
    return out


def joined(recs: list[tuple[str, str, bytes]], stream: str) -> bytes:
    """Reassemble a stream the way the kubelet does: P records join the next record."""
    text = b""
    for s, tag, body in recs:
        if s == stream:
            text += body + (b"\n" if tag == "F" else b"")
    return text


def test_cri_log_lines(runtime: Runtime, tmp_path: Path) -> None:
    cid = PREFIX + "log"
    script = ("echo one; echo two >&2; printf 'no-newline'; sleep 0.2; echo; "
              "head -c 40000 /dev/zero | tr '\\0' x; echo; printf tail")
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", script])
    log = tmp_path / "c.log"
    runtime.create(CreateRequest(id=cid, bundle=bundle, log_path=log))
    runtime.start(cid)
    assert runtime.wait(cid, 10).exit_code == 0
    recs = records(log)
    assert recs[0] == ("stdout", "F", b"one")
    assert ("stderr", "F", b"two") in recs
    assert ("stdout", "P", b"no-newline") in recs
    assert joined(recs, "stdout") == b"one\nno-newline\n" + b"x" * 40000 + b"\ntail"
    assert max(len(body) for _, _, body in recs) <= 16 * 1024
    assert recs[-1] == ("stdout", "P", b"tail")
    assert sum(1 for _, tag, _ in recs if tag == "P") >= 3


def test_reopen_after_rotation(runtime: Runtime, tmp_path: Path) -> None:
    cid = PREFIX + "rot"
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", "while true; do echo tick; sleep 0.05;"
                                                       " done"])
    log = tmp_path / "c.log"
    runtime.create(CreateRequest(id=cid, bundle=bundle, log_path=log))
    runtime.start(cid)
    time.sleep(0.3)
    os.rename(log, tmp_path / "c.log.1")
    runtime.reopen_log(cid)
    time.sleep(0.3)
    runtime.kill(cid, 9)
    runtime.wait(cid, 10)
    old, new = records(tmp_path / "c.log.1"), records(log)
    assert old and new
    assert set(new) == {("stdout", "F", b"tick")}


def test_attach_stdin_stdout_stdin_once(runtime: Runtime, tmp_path: Path) -> None:
    cid = PREFIX + "attach"
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", "cat; echo done >&2"])
    log = tmp_path / "c.log"
    created = runtime.create(CreateRequest(id=cid, bundle=bundle, log_path=log, stdin=True,
                                           stdin_once=True))
    runtime.start(cid)
    watcher = runtime.attach(cid, timeout=10)
    with AttachClient(created.attach_socket, timeout=10) as client:
        client.send_stdin(b"hello\n")
        assert client.read_frame() == (framing.STDOUT, b"hello\n")
        client.send_stdin(b"bye\n")
        client.close_stdin()
        out, err, exit_record = client.read_until_exit()
    assert (out, err) == (b"bye\n", b"done\n")
    assert exit_record is not None and exit_record["exit_code"] == 0
    w_out, w_err, w_exit = watcher.read_until_exit()  # a second client saw everything too
    watcher.close()
    assert (w_out, w_err) == (b"hello\nbye\n", b"done\n")
    assert w_exit == exit_record
    assert joined(records(log), "stdout") == b"hello\nbye\n"
    assert not os.path.exists(created.attach_socket)


def test_terminal_and_resize(runtime: Runtime, tmp_path: Path) -> None:
    cid = PREFIX + "tty"
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", "read line; stty size; tty"],
                          process__terminal=True)
    os.symlink("busybox", bundle / "rootfs" / "bin" / "stty")
    created = runtime.create(CreateRequest(id=cid, bundle=bundle, stdin=True,
                                           log_path=tmp_path / "c.log"))
    runtime.start(cid)
    with AttachClient(created.attach_socket, timeout=10) as client:
        client.resize(33, 101)
        time.sleep(0.1)
        client.send_stdin(b"go\r")
        out, err, exit_record = client.read_until_exit()
    assert b"33 101" in out
    assert b"/dev/pts/0" in out
    assert err == b""
    assert exit_record is not None and exit_record["exit_code"] == 0


def test_exec_into_running(runtime: Runtime, tmp_path: Path) -> None:
    cid = PREFIX + "exec"
    bundle = write_bundle(tmp_path / "b", ["sleep", "300"])
    runtime.create(CreateRequest(id=cid, bundle=bundle))
    runtime.start(cid)
    r, w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    res = runtime.exec(cid, ExecRequest(process={"args": ["sh", "-c", "hostname; exit 7"],
                                                 "cwd": "/", "env": ["PATH=/bin"]},
                                        stdio=(null, w, w), wait_fd=True))
    os.close(w)
    os.close(null)
    with os.fdopen(r, "rb") as f:
        assert f.read() == b"crt-life-box\n"
    assert res.wait_fd is not None
    with os.fdopen(res.wait_fd, "rb") as f:
        assert json.loads(f.read())["exit_code"] == 7
    assert json.loads(Path(res.exit_file).read_text())["exit_code"] == 7
    runtime.release_exec(res)
    assert not os.path.exists(res.exit_file)


def test_brief_exec_reports_on_the_wait_fd_only(runtime: Runtime, tmp_path: Path) -> None:
    cid = PREFIX + "execbrief"
    runtime.create(CreateRequest(id=cid, bundle=write_bundle(tmp_path / "b", ["sleep", "300"])))
    runtime.start(cid)
    before = set(os.listdir(runtime.store.dir(cid)))
    r, w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    res = runtime.exec(cid, ExecRequest(process={"args": ["sh", "-c", "echo hi; exit 3"],
                                                 "cwd": "/", "env": ["PATH=/bin"]},
                                        stdio=(null, w, w), wait_fd=True, brief=True))
    os.close(w)
    os.close(null)
    with os.fdopen(r, "rb") as f:
        assert f.read() == b"hi\n"
    assert res.wait_fd is not None
    with os.fdopen(res.wait_fd, "rb") as f:
        assert json.loads(f.read())["exit_code"] == 3
    assert res.exit_file == ""
    assert set(os.listdir(runtime.store.dir(cid))) == before


def test_brief_exec_monitor_is_the_zygotes(runtime: Runtime, zygote: Zygote,
                                           tmp_path: Path) -> None:
    """A brief request's monitor is the set-up child of a spare, which exits: the zygote
    adopts it (and the kernel reaps it when it ends) rather than the host's init, which may
    never reap it."""
    cid = PREFIX + "execbriefparent"
    runtime.create(CreateRequest(id=cid, bundle=write_bundle(tmp_path / "b", ["sleep", "300"])))
    runtime.start(cid)
    null = os.open(os.devnull, os.O_RDWR)
    res = runtime.exec(cid, ExecRequest(process={"args": ["sleep", "2"], "cwd": "/"},
                                        stdio=(null, null, null), wait_fd=True, brief=True))
    os.close(null)
    deadline = time.monotonic() + 2
    while ppid(res.monitor_pid) != zygote.pid and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ppid(res.monitor_pid) == zygote.pid
    assert res.wait_fd is not None
    with os.fdopen(res.wait_fd, "rb") as f:
        assert json.loads(f.read())["exit_code"] == 0


def ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_exec_awaiting_attach_keeps_early_output(runtime: Runtime, tmp_path: Path) -> None:
    cid = PREFIX + "execwait"
    runtime.create(CreateRequest(id=cid, bundle=write_bundle(tmp_path / "b", ["sleep", "300"])))
    runtime.start(cid)
    res = runtime.exec(cid, ExecRequest(process={"args": ["sh", "-c", "echo early; exit 2"],
                                                 "cwd": "/", "terminal": True},
                                        stdin=True, await_attach=True))
    time.sleep(0.5)  # the process is long gone before the caller attaches
    assert json.loads(Path(res.exit_file).read_text())["exit_code"] == 2
    with AttachClient(res.attach_socket, timeout=10) as client:
        out, _, exit_record = client.read_until_exit()
    assert out.replace(b"\r", b"") == b"early\n"
    assert exit_record is not None and exit_record["exit_code"] == 2
