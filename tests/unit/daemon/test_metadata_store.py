"""The metadata store survives SIGKILL of its writer at any point, never torn."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from crid.store import MetadataStore
from tests.rig.daemon import TOP

WRITER = r"""
import hashlib, json, os, sys
from crid.store import MetadataStore
store = MetadataStore(sys.argv[1])
seq = 0
while True:
    seq += 1
    blob = os.urandom(seq % 5000).hex()
    rec = {"seq": seq, "blob": blob, "sum": hashlib.sha256(blob.encode()).hexdigest()}
    # a pod and its container change together: both or neither
    store.put_many([("pod", "p1", rec), ("container", "c1", dict(rec, pod="p1"))])
    if seq % 7 == 0:
        store.delete("container", f"old{seq - 7}")
    store.put("container", f"old{seq}", {"seq": seq})
    print(seq, flush=True)
"""


def test_put_get_delete_and_reopen(tmp_path: Path) -> None:
    store = MetadataStore(tmp_path / "m.db")
    store.put("pod", "a", {"name": "x", "labels": {"k": "v"}})
    store.put("pod", "b", {"name": "y"})
    store.delete("pod", "b")
    store.delete("pod", "absent")
    got = store.get("pod", "a")
    assert got is not None
    got["name"] = "mutated"  # callers get copies
    assert store.get("pod", "a") == {"name": "x", "labels": {"k": "v"}}
    store.close()
    again = MetadataStore(tmp_path / "m.db")
    assert again.all("pod") == [{"name": "x", "labels": {"k": "v"}}]
    assert again.get("pod", "b") is None


def test_sigkill_at_many_points_never_tears(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    rng = random.Random(7)
    last_acked = 0
    for _ in range(25):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(db)], cwd=TOP,
                                stdout=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        acked = [int(x) for x in out.split()]
        store = MetadataStore(db)
        pod, ctr = store.get("pod", "p1"), store.get("container", "c1")
        if pod is None:
            assert ctr is None and not acked and last_acked == 0
            store.close()
            continue
        assert hashlib.sha256(pod["blob"].encode()).hexdigest() == pod["sum"]
        assert ctr == dict(pod, pod="p1")
        # every acknowledged write is there (the writer restarts its seq from 1)
        if acked:
            assert pod["seq"] >= acked[-1]
            last_acked = acked[-1]
        json.dumps(store.all("container"))
        store.close()


def test_concurrent_changes_are_group_committed_and_all_land(tmp_path: Path) -> None:
    import threading

    store = MetadataStore(tmp_path / "m.db")

    def writer(t: int) -> None:
        for i in range(10):
            store.put("pod", f"t{t}-{i}", {"t": t, "i": i})
            if i % 3 == 0:
                store.delete("pod", f"t{t}-{i}")

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(12)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    expected = sorted(f"t{t}-{i}" for t in range(12) for i in range(10) if i % 3)
    store.close()
    again = MetadataStore(tmp_path / "m.db")
    assert sorted(f"t{r['t']}-{r['i']}" for r in again.all("pod")) == expected
