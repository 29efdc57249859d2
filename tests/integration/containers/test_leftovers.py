"""Stopping and removing leave nothing behind (issue 13): a container's leftover children die
with it in every PID namespace mode, its cgroup goes with RemoveContainer, host-PID pods are
removed, and the daemon's own helpers leave neither zombies nor extra processes, also across a
daemon restart."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import grpc
import pytest

from crid.api import api_pb2 as pb
from crid.children import DAEMON, OWNER, POD
from runtime.api import process_start_time
from tests.integration.containers.helpers import (
    PREFIX,
    ContainerRig,
    container_config,
    wait_for,
)
from tests.integration.pods.helpers import cgroups_under, pod_config
from tests.rig.daemon import start_crid
from tests.rig.leaks import (
    daemon_tree,
    holders,
    leaving_a_child,
    strays,
    with_arg,
    zombies,
)

MODES = {"POD": pb.POD, "NODE": pb.NODE, "CONTAINER": pb.CONTAINER}


def _pid_mode(mode: int) -> dict[str, object]:
    ns = pb.NamespaceOption(pid=mode)
    return {"linux": pb.LinuxContainerConfig(
        security_context=pb.LinuxContainerSecurityContext(namespace_options=ns))}


def _pod(rig: ContainerRig, mode: int) -> tuple[str, pb.PodSandboxConfig]:
    return rig.run_pod(namespaces=pb.NamespaceOption(pid=mode))


def _remove_pod(rig: ContainerRig, pod_id: str) -> None:
    rig.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
    rig.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
    if pod_id in rig.pods:
        rig.pods.remove(pod_id)


def _cgroups_of(rig: ContainerRig, some_id: str) -> list[str]:
    return [d for d in cgroups_under(rig.cgroup_parent) if some_id in d]


@pytest.mark.parametrize("mode", MODES)
def test_stop_ends_the_leftover_child_and_remove_its_cgroup(rig: ContainerRig,
                                                            mode: str) -> None:
    pod = _pod(rig, MODES[mode])
    command, child = leaving_a_child()
    cid = rig.run(pod, container_config(command=command, **_pid_mode(MODES[mode])))
    wait_for("the child to run", lambda: with_arg(child))
    rig.stop(cid, timeout=10)
    assert with_arg(child) == []
    st = rig.status(cid).status
    assert (st.state, st.exit_code) == (pb.CONTAINER_EXITED, 0)  # the trap's exit 0
    assert _cgroups_of(rig, cid) != []
    rig.remove(cid)
    assert _cgroups_of(rig, cid) == []
    _remove_pod(rig, pod[0])  # a host-PID pod too: its cgroup is empty
    assert cgroups_under(rig.cgroup_parent) == []
    assert holders(rig.daemon.run_root) == {}


@pytest.mark.parametrize("mode", ["POD", "NODE"])
def test_an_init_that_exits_alone_takes_its_children_along(rig: ContainerRig,
                                                           mode: str) -> None:
    pod = _pod(rig, MODES[mode])
    _, child = leaving_a_child()
    cid = rig.run(pod, container_config(
        command=("/bin/sh", "-c", f"sleep {child} & sleep 0.5; exit 3"),
        **_pid_mode(MODES[mode])))
    wait_for("the exit", lambda: rig.status(cid).status.state == pb.CONTAINER_EXITED)
    assert with_arg(child) == []
    assert rig.status(cid).status.exit_code == 3
    rig.remove(cid)
    assert _cgroups_of(rig, cid) == []


def test_fifty_pod_lifecycles_leave_no_zombie_and_no_process(rig: ContainerRig) -> None:
    before = daemon_tree(rig.daemon)
    for i in range(50):
        mode = (pb.POD, pb.NODE, pb.CONTAINER)[i % 3]
        pod = _pod(rig, mode)
        command, child = leaving_a_child()
        cid = rig.run(pod, container_config(command=command, **_pid_mode(mode)))
        wait_for("the child to run", lambda c=child: with_arg(c))
        rig.stop(cid, timeout=10)
        rig.remove(cid)
        _remove_pod(rig, pod[0])
        assert with_arg(child) == []
    assert zombies(rig.daemon) == []
    after = daemon_tree(rig.daemon)
    # the zygote's spare is forked anew after each create: compare what each process is
    assert sorted(p.comm for p in after.values()) == sorted(p.comm for p in before.values())
    assert cgroups_under(rig.cgroup_parent) == []


def test_a_daemon_restart_between_create_and_stop_leaves_nothing(rig: ContainerRig) -> None:
    for mode in (pb.POD, pb.NODE, pb.CONTAINER):
        pod = _pod(rig, mode)
        command, child = leaving_a_child()
        cid = rig.run(pod, container_config(command=command, **_pid_mode(mode)))
        wait_for("the child to run", lambda c=child: with_arg(c))
        rig.restart()
        assert rig.status(cid).status.state == pb.CONTAINER_RUNNING
        rig.stop(cid, timeout=10)
        assert with_arg(child) == []
        rig.remove(cid)
        assert _cgroups_of(rig, cid) == []
        _remove_pod(rig, pod[0])
        assert cgroups_under(rig.cgroup_parent) == []
        assert zombies(rig.daemon) == []
        assert holders(rig.daemon.run_root) == {}


def _kill_and_restart(rig: ContainerRig) -> None:
    rig.daemon.stop(signal.SIGKILL)
    rig.daemon = start_crid(rig.base, config=rig.config)


def test_unrecorded_processes_of_a_killed_daemon_are_ended_at_start(rig: ContainerRig) -> None:
    """What a daemon killed between starting a pod holder (or a monitor) and recording it
    leaves: processes with its marks, which no record claims."""
    root = str(rig.daemon.run_root)
    rig.daemon.stop(signal.SIGKILL)
    _, seconds = leaving_a_child()
    gone_daemon = {OWNER: root, DAEMON: "1:1"}
    holder = subprocess.Popen(["sleep", seconds], start_new_session=True,
                              env={**os.environ, **gone_daemon, POD: secrets.token_hex(32)})
    monitor = subprocess.Popen(["sleep", seconds], start_new_session=True,
                               env={**os.environ, **gone_daemon})
    try:
        rig.daemon = start_crid(rig.base, config=rig.config)
        assert (holder.wait(10), monitor.wait(10)) == (-signal.SIGKILL, -signal.SIGKILL)
        assert strays(rig.daemon) == {}
    finally:
        for p in (holder, monitor):
            p.kill()
            p.wait()


def test_a_daemon_killed_during_run_pod_sandbox_leaves_nothing(rig: ContainerRig) -> None:
    for delay in (0.0, 0.05, 0.1, 0.2, 0.3, 0.4):
        running = rig.rt.RunPodSandbox.future(pb.RunPodSandboxRequest(config=_config(rig)),
                                              timeout=60)
        time.sleep(delay)  # somewhere in the RunPodSandbox: where is what this loop varies
        _kill_and_restart(rig)
        try:
            running.result()
        except grpc.RpcError:
            pass
        for pod in rig.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items:
            _remove_pod(rig, pod.id)
        assert strays(rig.daemon) == {}
        assert holders(rig.daemon.run_root) == {}
        assert cgroups_under(rig.cgroup_parent) == []
        assert zombies(rig.daemon) == []


def _config(rig: ContainerRig) -> pb.PodSandboxConfig:
    cfg = pod_config(name=f"{PREFIX}pod-{secrets.token_hex(3)}", parent=rig.cgroup_parent)
    cfg.log_directory = str(rig.log_dir / cfg.metadata.name)
    return cfg


def _ppid_comm(pid: int) -> tuple[int, str]:
    ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return ppid, Path(f"/proc/{ppid}/comm").read_text().strip()


@pytest.mark.parametrize("mode", ["POD", "CONTAINER"])
def test_an_exec_running_while_the_daemon_is_killed_is_adopted(rig: ContainerRig,
                                                               mode: str) -> None:
    """The exec'd process runs on in its container when the daemon dies; its monitor (the
    only one who serves it) is adopted by the next daemon, not ended as unrecorded, and it
    goes with the container."""
    pod = _pod(rig, MODES[mode])
    command, child = leaving_a_child()
    cid = rig.run(pod, container_config(command=command, **_pid_mode(MODES[mode])))
    _, execd = leaving_a_child()
    running = rig.rt.ExecSync.future(pb.ExecSyncRequest(
        container_id=cid, cmd=["/bin/sleep", execd], timeout=600), timeout=620)
    [sleep] = wait_for("the exec'd sleep", lambda: with_arg(execd))
    monitor, _ = wait_for("its monitor as its parent",
                          lambda: _ppid_comm(sleep)[1] == "crid-monitor" and _ppid_comm(sleep))
    monitor_start = process_start_time(monitor)
    _kill_and_restart(rig)
    with pytest.raises(grpc.RpcError):
        running.result()
    assert with_arg(execd) == [sleep]
    assert process_start_time(monitor) == monitor_start  # adopted, not ended
    assert rig.status(cid).status.state == pb.CONTAINER_RUNNING
    assert rig.exec(cid, "/bin/echo", "on").stdout == b"on\n"
    rig.stop(cid, timeout=10)
    assert with_arg(execd) == with_arg(child) == []
    rig.remove(cid)
    assert process_start_time(monitor) is None  # the adopted monitor went with it
    _remove_pod(rig, pod[0])
    assert strays(rig.daemon) == {}
    assert zombies(rig.daemon) == []
