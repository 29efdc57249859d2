"""Operations on one container racing each other from threads, through the real daemon.

The kubelet's pod workers, its PLEG relist, probes and `crictl` all reach the same container at
once. Whatever order start, stop, remove and status land in, a container removed stays removed:
no RPC may save back a record that RemoveContainer has just deleted (a ghost container).
"""

from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Callable

import grpc

from crid.api import api_pb2 as pb
from tests.integration.containers.helpers import ContainerRig, container_config, mounts_under
from tests.rig.daemon import start_crid

ROUNDS = 30
WORKLOAD = ("/bin/sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait")
# Codes a racing call may rightly get. Stop and remove are idempotent, also for a container
# removed meanwhile (the CRI asks so); a start may find the container gone (NOT_FOUND) or no
# longer created (FAILED_PRECONDITION); a status may find it gone.
EXPECTED = {"start": {grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND,
                      grpc.StatusCode.FAILED_PRECONDITION},
            "stop": {grpc.StatusCode.OK}, "remove": {grpc.StatusCode.OK},
            "status": {grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND}}


def _config() -> pb.ContainerConfig:
    sc = pb.LinuxContainerSecurityContext(namespace_options=pb.NamespaceOption(pid=pb.CONTAINER))
    return container_config(command=WORKLOAD, linux=pb.LinuxContainerConfig(security_context=sc))


class _Round:
    """One container and the racing callers; records every unexpected answer."""

    def __init__(self, rig: ContainerRig, cid: str) -> None:
        self.rig, self.cid = rig, cid
        self.errors: list[str] = []
        self.removed = threading.Event()  # set once a RemoveContainer has returned OK
        self.finished = threading.Event()  # set once start, stop and remove have returned
        self.gate = threading.Barrier(5)

    def call(self, what: str, fn: Callable[[], object]) -> grpc.StatusCode:
        try:
            fn()
            code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            code = e.code()  # type: ignore[attr-defined]
            if code not in EXPECTED[what]:
                self.errors.append(f"{what} {self.cid[:12]}: {code.name}: {e.details()}")  # type: ignore[attr-defined]
        return code

    def _jitter(self) -> None:
        self.gate.wait(10)
        threading.Event().wait(random.uniform(0, 0.03))

    def start(self) -> None:
        self._jitter()
        rt = self.rig.rt
        self.call("start", lambda: rt.StartContainer(
            pb.StartContainerRequest(container_id=self.cid), timeout=30))

    def stop(self) -> None:
        self._jitter()
        self.call("stop", lambda: self.rig.stop(self.cid, random.choice((0, 1))))

    def remove(self) -> None:
        self._jitter()
        if self.call("remove", lambda: self.rig.remove(self.cid)) is grpc.StatusCode.OK:
            self.removed.set()

    def watch(self) -> None:
        """Status and list until every racing call has returned, then once more: once a
        remove has returned, the container must never be seen again."""
        self._jitter()
        while True:
            last = self.finished.is_set()
            after_remove = self.removed.is_set()
            listed = self._listed()
            status = self.call("status", lambda: self.rig.status(self.cid))
            if after_remove and (listed or status is not grpc.StatusCode.NOT_FOUND):
                self.errors.append(f"ghost {self.cid[:12]}: listed={listed} "
                                   f"status={status.name} after RemoveContainer returned")
                return
            if last:
                return

    def _listed(self) -> bool:
        items = self.rig.rt.ListContainers(pb.ListContainersRequest()).containers
        return any(c.id == self.cid for c in items)

    def run(self) -> list[str]:
        racers = [threading.Thread(target=f) for f in (self.start, self.stop, self.remove,
                                                       self.stop)]
        watcher = threading.Thread(target=self.watch)
        for t in [*racers, watcher]:
            t.start()
        for t in racers:
            t.join(120)
        self.finished.set()
        watcher.join(60)
        if not self.removed.is_set():
            self.errors.append(f"remove of {self.cid[:12]} never succeeded")
        return self.errors


def _container_records(db: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id FROM records WHERE kind = 'container'").fetchall()
    return [r[0] for r in rows]


def test_start_stop_remove_and_status_race_leaves_no_ghost(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    errors: list[str] = []
    for _ in range(ROUNDS):
        cid = rig.create(pod, _config())
        errors += _Round(rig, cid).run()
    assert errors == [], "\n".join(errors) + "\n" + rig.daemon.log()[-3000:]
    assert rig.rt.ListContainers(pb.ListContainersRequest()).containers == []
    rig.daemon.stop()
    assert _container_records(str(rig.daemon.root / "metadata.db")) == []
    rig.daemon = start_crid(rig.base, config=rig.config)
    assert rig.rt.ListContainers(pb.ListContainersRequest()).containers == []
    assert mounts_under(rig.daemon.root / "containers") == []
    assert list((rig.daemon.root / "containers").iterdir()) == []

