"""A container outlives the crid-like process that created it (SIGKILLed), and keeps logging;
the zygote exits with its owner; monitors are the zygote's children (it ignores SIGCHLD, so
the kernel reaps them), never the creator's, and are re-parented when the zygote exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from runtime.lifecycle import Runtime
from tests.integration.runtime.lifekit import PREFIX, alive, wait_gone, write_bundle

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

CREATOR = textwrap.dedent("""
    import sys, threading, time
    from pathlib import Path
    from runtime.lifecycle import CreateRequest, Runtime
    from runtime.launch.zygote import Zygote
    root, bundle, log, cid = sys.argv[1:5]
    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()  # like gRPC: threads
    z = Zygote.start()
    rt = Runtime(Path(root), z)
    c = rt.create(CreateRequest(id=cid, bundle=Path(bundle), log_path=Path(log)))
    rt.start(cid)
    print(c.pid, c.monitor_pid, z.pid, flush=True)
    time.sleep(600)
""")


def ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def zombies_of(parent: int) -> list[int]:
    found = []
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] == "Z" and int(fields[1]) == parent:
            found.append(int(name))
    return found


def test_container_survives_creator_sigkill(tmp_path: Path) -> None:
    cid = PREFIX + "survivor"
    bundle = write_bundle(tmp_path / "b", ["sh", "-c", "while true; do echo alive; sleep 0.05;"
                                                       " done"])
    log, root = tmp_path / "c.log", tmp_path / "state"
    repo = Path(__file__).resolve().parents[3]
    creator = subprocess.Popen([sys.executable, "-c", CREATOR, str(root), str(bundle), str(log),
                                cid], stdout=subprocess.PIPE, cwd=repo,
                               env={**os.environ, "PYTHONPATH": str(repo)})
    assert creator.stdout is not None
    pid, monitor, zygote_pid = map(int, creator.stdout.readline().split())
    try:
        assert ppid(monitor) == zygote_pid
        # the set-up child's exit, which re-parents the process to its monitor, may still be
        # under way when create returns
        deadline = time.monotonic() + 5
        while ppid(pid) != monitor and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ppid(pid) == monitor
        creator.send_signal(signal.SIGKILL)
        creator.wait()
        assert wait_gone(zygote_pid), "the zygote must exit with its owner"
        assert ppid(monitor) not in (creator.pid, zygote_pid)
        size = log.stat().st_size
        time.sleep(0.5)
        assert alive(pid) and alive(monitor)
        assert log.stat().st_size > size
        rt = Runtime(root)
        assert rt.state(cid).status.value == "running"
    finally:
        rt = Runtime(root)
        rt.delete(cid, force=True)
    assert wait_gone(monitor)
    assert not alive(pid)


def test_dead_zygote_is_a_named_error(tmp_path: Path) -> None:
    from runtime.launch.zygote import Zygote, ZygoteError
    from runtime.lifecycle import CreateRequest

    z = Zygote.start()
    os.kill(z.pid, signal.SIGKILL)
    assert wait_gone(z.pid)
    rt = Runtime(tmp_path / "state", z)
    bundle = write_bundle(tmp_path / "b", ["true"])
    # The spare the zygote had forked may still take one request (and serve it); after that
    # nothing is left to answer.
    with pytest.raises(ZygoteError):
        for i in range(2):
            rt.create(CreateRequest(id=f"{PREFIX}nozygote{i}", bundle=bundle))
            rt.delete(f"{PREFIX}nozygote{i}", force=True)
    assert rt.store.ids() == []
    z.close()


def test_malformed_request_does_not_kill_the_zygote(tmp_path: Path) -> None:
    import json as _json

    from runtime.launch.zygote import Zygote
    from runtime.lifecycle import CreateRequest

    z = Zygote.start()
    try:
        r, w = os.pipe()
        socket_ = z._sock  # the raw channel, as a buggy or hostile peer would use it
        socket_.sendmsg([b"{not json"])
        import socket as _socket
        _socket.send_fds(socket_, [_json.dumps({"op": "monitor", "request": {}, "fds": {
            "reply": 0}}).encode()], [w])
        os.close(w)
        with os.fdopen(r, "rb") as f:
            reply = _json.loads(f.readline())
        assert reply["ok"] is False and reply["type"] == "ZygoteError"
        rt = Runtime(tmp_path / "state", z)
        cid = PREFIX + "afterbad"
        rt.create(CreateRequest(id=cid, bundle=write_bundle(tmp_path / "b", ["true"])))
        rt.start(cid)
        assert rt.wait(cid, 10).exit_code == 0
        rt.delete(cid)
    finally:
        z.close()


def test_concurrent_creates_from_threads(tmp_path: Path) -> None:
    """crid's gRPC threads share one Runtime and one zygote."""
    from concurrent.futures import ThreadPoolExecutor

    from runtime.launch.zygote import Zygote
    from runtime.lifecycle import CreateRequest

    bundle = write_bundle(tmp_path / "b", ["sh", "-c", "exit $(( $$ % 7 ))"])
    z = Zygote.start()
    rt = Runtime(tmp_path / "state", z)

    def lifecycle(i: int) -> tuple[int, int]:
        cid = f"{PREFIX}par{i}"
        created = rt.create(CreateRequest(id=cid, bundle=bundle))
        rt.start(cid)
        status = rt.wait(cid, 30)
        rt.delete(cid)
        return created.monitor_pid, status.exit_code

    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lifecycle, range(16)))
        assert all(wait_gone(monitor) for monitor, _ in results)
        assert zombies_of(z.pid) == []  # the zygote ignores SIGCHLD: exited monitors are reaped
    finally:
        z.close()
    assert all(code == 1 for _, code in results)  # $$ is 1 in the container's pid namespace
    assert all(wait_gone(monitor) for monitor, _ in results)
    assert rt.store.ids() == []
