"""A container outlives the crid-like process that created it (SIGKILLed), and keeps logging;
the zygote exits with its owner; monitors are nobody's children."""

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
    from runtime.zygote import Zygote
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
        assert ppid(monitor) != creator.pid and ppid(monitor) != zygote_pid
        assert ppid(pid) == monitor
        creator.send_signal(signal.SIGKILL)
        creator.wait()
        assert wait_gone(zygote_pid), "the zygote must exit with its owner"
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
