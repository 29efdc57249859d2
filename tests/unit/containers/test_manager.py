"""ContainerManager over fakes of its ports: start/stop/exit/reconcile/remove/exec/update."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from crid.containers.manager import ContainerManager, ContainerOptions, ListFilter
from crid.containers.record import ContainerRecord, ContainerState
from crid.containers.seams import ExecResult, ExitInfo
from crid.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, NotFound
from crid.events import EventBus
from crid.resources import Resources
from crid.store import MetadataStore


class FakeRuntime:
    """Records calls; containers 'exit' when killed, with 128+signal."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.exits: dict[str, ExitInfo] = {}
        self.running: set[str] = set()
        self.ignore: set[int] = set()

    def create(self, cid: str, *a: Any) -> int:
        self.running.add(cid)
        return 42

    def start(self, cid: str) -> None:
        self.calls.append(("start", cid))

    def kill(self, cid: str, sig: int) -> None:
        self.calls.append(("kill", cid, sig))
        if sig not in self.ignore:
            self.running.discard(cid)
            self.exits[cid] = ExitInfo(128 + sig, finished_at=5)

    def wait(self, cid: str, timeout: float) -> ExitInfo | None:
        return self.exits.get(cid)

    def exit_status(self, cid: str) -> ExitInfo | None:
        return self.exits.get(cid)

    def is_running(self, cid: str) -> bool:
        return cid in self.running

    def delete(self, cid: str, force: bool) -> None:
        self.calls.append(("delete", cid))

    def update(self, cid: str, resources: dict[str, Any]) -> None:
        self.calls.append(("update", cid, resources))

    def pids(self, cid: str) -> list[int]:
        return []

    def reopen_log(self, cid: str) -> None:
        self.calls.append(("reopen", cid))

    def exec_sync(self, cid: str, process: dict[str, Any], timeout: float) -> ExecResult:
        self.calls.append(("exec", cid, process["args"], process["terminal"]))
        if timeout == 1:
            raise DeadlineExceeded("slow")
        return ExecResult(b"out", b"", 0)


class Unused:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} should not be called")


@pytest.fixture
def parts(tmp_path: Path) -> tuple[ContainerManager, FakeRuntime, MetadataStore, EventBus]:
    store = MetadataStore(tmp_path / "meta.db")
    rt, bus = FakeRuntime(), EventBus()
    for cid, state in (("c1", ContainerState.RUNNING), ("c2", ContainerState.CREATED),
                       ("c3", ContainerState.EXITED)):
        bundle = tmp_path / "containers" / cid
        bundle.mkdir(parents=True)
        (bundle / "config.json").write_text('{"process": {"args": ["sleep"], "cwd": "/"}}')
        rec = ContainerRecord(cid, "pod1" if cid != "c3" else "pod2", f"n-{cid}", 0, "img",
                              "sha256:i", "ref", state=state, bundle=str(bundle),
                              stop_signal="SIGUSR1", labels={"k": cid})
        store.put("container", cid, rec.to_dict())
        if state is not ContainerState.EXITED:
            rt.running.add(cid)
    opts = ContainerOptions(root=tmp_path / "containers", forbidden_roots=(tmp_path,))
    return ContainerManager(opts, store, rt, Unused(), Unused(), bus), rt, store, bus


def test_stop_sends_the_stop_signal_then_records_the_exit(parts) -> None:
    mgr, rt, store, bus = parts
    sub = bus.subscribe()
    mgr.stop("c1", 10)
    assert rt.calls == [("kill", "c1", signal.SIGUSR1)]
    rec = mgr.get("c1")
    assert (rec.state, rec.exit_code, rec.reason) == (ContainerState.EXITED, 128 + 10, "Error")
    assert store.get("container", "c1")["state"] == "CONTAINER_EXITED"
    assert next(sub.events(poll=0.01)).kind == "STOPPED"
    mgr.stop("c1", 10)  # idempotent
    assert len(rt.calls) == 1


def test_stop_escalates_to_sigkill_and_zero_timeout_kills_at_once(parts) -> None:
    mgr, rt, _, _ = parts
    rt.ignore.add(signal.SIGUSR1)
    mgr.stop("c1", 1)
    assert [c[2] for c in rt.calls] == [signal.SIGUSR1, signal.SIGKILL]
    assert mgr.get("c1").exit_code == 137
    mgr.stop("c2", 0)
    assert rt.calls[-1] == ("kill", "c2", signal.SIGKILL)


def test_mark_exited_reasons_and_only_once(parts) -> None:
    mgr, _, _, _ = parts
    assert mgr.mark_exited("c1", ExitInfo(137, oom_killed=True)).reason == "OOMKilled"
    assert mgr.mark_exited("c1", ExitInfo(0)).reason == "OOMKilled"
    assert mgr.mark_exited("c2", ExitInfo(0)).reason == "Completed"
    assert mgr.mark_exited("gone", ExitInfo(0)) is None


def test_reconcile_marks_vanished_containers_and_removes_leftover_dirs(parts, tmp_path) -> None:
    mgr, rt, _, _ = parts
    rt.running.discard("c1")
    rt.exits["c2"] = ExitInfo(3)
    (tmp_path / "containers" / "half-created").mkdir()
    changes = mgr.reconcile()
    assert sorted(changes) == ["exited c1", "exited c2", "leftover half-created"]
    assert (mgr.get("c1").exit_code, mgr.get("c2").exit_code) == (255, 3)
    assert not (tmp_path / "containers" / "half-created").exists()


def test_start_only_from_created(parts) -> None:
    mgr, rt, _, _ = parts
    rec = mgr.start("c2")
    assert rec.state is ContainerState.RUNNING and rec.started_at > 0
    assert rt.calls == [("start", "c2")]
    with pytest.raises(FailedPrecondition):
        mgr.start("c2")


def test_remove_stops_and_releases_everything(parts, tmp_path) -> None:
    mgr, rt, store, _ = parts
    mgr.remove("c1")
    assert ("delete", "c1") in rt.calls and store.get("container", "c1") is None
    assert not (tmp_path / "containers" / "c1").exists()
    with pytest.raises(NotFound):
        mgr.get("c1")
    mgr.remove("c1")


def test_pod_scoped_stop_and_remove(parts) -> None:
    mgr, _, _, _ = parts
    mgr.stop_pod("pod1")
    assert {mgr.get(c).state for c in ("c1", "c2")} == {ContainerState.EXITED}
    mgr.remove_pod("pod1")
    assert [r.id for r in mgr.list()] == ["c3"]


def test_list_filters_and_prefix_lookup(parts) -> None:
    mgr, _, _, _ = parts
    assert [r.id for r in mgr.list(ListFilter(state=ContainerState.CREATED))] == ["c2"]
    assert [r.id for r in mgr.list(ListFilter(labels=(("k", "c3"),)))] == ["c3"]
    assert sorted(r.id for r in mgr.list(ListFilter(pod_id="pod1"))) == ["c1", "c2"]
    with pytest.raises(InvalidArgument):
        mgr.get("c")
    assert mgr.image_ids_in_use() == {"sha256:i"}


def test_exec_uses_the_container_process_and_checks_state(parts) -> None:
    mgr, rt, _, _ = parts
    assert mgr.exec_sync("c1", ["true"], 5).stdout == b"out"
    assert rt.calls[-1] == ("exec", "c1", ["true"], False)
    with pytest.raises(DeadlineExceeded):
        mgr.exec_sync("c1", ["sleep"], 1)
    with pytest.raises(InvalidArgument):
        mgr.exec_sync("c1", [], 5)
    with pytest.raises(FailedPrecondition):
        mgr.exec_sync("c3", ["true"], 5)


def test_the_spec_is_read_from_the_bundle_once_after_a_restart(parts, tmp_path) -> None:
    mgr, _, _, _ = parts  # a manager over records of a previous daemon: nothing in memory
    config = tmp_path / "containers" / "c1" / "config.json"
    assert mgr.spec("c1") == {"process": {"args": ["sleep"], "cwd": "/"}}
    config.write_text('{"process": {"args": ["changed"], "cwd": "/"}}')
    assert mgr.exec_process("c1") == {"args": ["sleep"], "cwd": "/"}
    config.unlink()
    assert mgr.spec("c1")["process"]["args"] == ["sleep"]
    with pytest.raises(NotFound, match="c2: its spec cannot be read"):
        (tmp_path / "containers" / "c2" / "config.json").unlink()
        mgr.spec("c2")


def test_specs_and_exec_templates_are_copies(parts) -> None:
    mgr, _, _, _ = parts
    mgr.exec_process("c1")["args"] = ["other"]
    mgr.spec("c1")["process"]["cwd"] = "/elsewhere"
    assert mgr.spec("c1")["process"] == {"args": ["sleep"], "cwd": "/"}
    assert mgr.exec_process("c1") == {"args": ["sleep"], "cwd": "/"}


def test_update_resources_keeps_device_rules(parts) -> None:
    mgr, rt, _, _ = parts
    rec = mgr.update_resources("c1", Resources(memory_limit=1 << 20, cpu_shares=512))
    assert rec.resources == {"devices": [], "cpu": {"shares": 512},
                             "memory": {"limit": 1 << 20}}
    assert rt.calls[-1][0] == "update"
    with pytest.raises(FailedPrecondition):
        mgr.update_resources("c3", Resources())


def test_a_remove_racing_a_start_waits_for_it_and_leaves_no_ghost(parts) -> None:
    mgr, rt, store, _ = parts
    in_start, release = threading.Event(), threading.Event()
    plain_start = rt.start

    def slow_start(cid: str) -> None:
        in_start.set()
        release.wait(5)
        plain_start(cid)

    rt.start = slow_start  # type: ignore[method-assign]
    starter = threading.Thread(target=mgr.start, args=("c2",))
    starter.start()
    assert in_start.wait(5)
    remover = threading.Thread(target=mgr.remove, args=("c2",))
    remover.start()
    remover.join(0.2)
    assert remover.is_alive()  # held off until the start has recorded its result
    assert mgr.get("c2").state is ContainerState.CREATED  # status is answered meanwhile
    release.set()
    starter.join(5)
    remover.join(5)
    assert [c[0] for c in rt.calls if c[1] == "c2"] == ["start", "kill", "delete"]
    assert [r.id for r in mgr.list()] == ["c1", "c3"]
    assert store.get("container", "c2") is None
    with pytest.raises(NotFound):
        mgr.start("c2")
