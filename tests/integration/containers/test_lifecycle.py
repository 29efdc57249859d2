"""The kubelet's container flow through a real daemon over its socket."""

from __future__ import annotations

import json
import time

import grpc

from crid.api import api_pb2 as pb
from tests.integration.containers.helpers import (
    ContainerRig,
    code_of,
    container_config,
    mounts_under,
    read_log,
    wait_for,
)
from tests.rig.cri_client import CriClient


def test_create_start_logs_exit_remove(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    cfg = container_config(command=("/bin/sh", "-c", "echo out; echo err >&2; exit 3"))
    cid = rig.create(pod, cfg)
    st = rig.status(cid, verbose=True)
    assert st.status.state == pb.CONTAINER_CREATED
    info = json.loads(st.info["info"])
    assert info["runtimeSpec"]["process"]["args"] == ["/bin/sh", "-c",
                                                      "echo out; echo err >&2; exit 3"]
    rig.rt.StartContainer(pb.StartContainerRequest(container_id=cid))
    wait_for("exit", lambda: rig.status(cid).status.state == pb.CONTAINER_EXITED, 2)
    st = rig.status(cid).status
    assert (st.exit_code, st.reason) == (3, "Error")
    assert st.finished_at >= st.started_at > st.created_at > 0
    log = rig.log_dir / pod[1].metadata.name / cfg.log_path
    assert st.log_path == str(log)
    assert sorted(read_log(log)) == [("stderr", "F", "err"), ("stdout", "F", "out")]
    rig.remove(cid)
    rig.remove(cid)
    assert code_of(lambda: rig.status(cid)) == grpc.StatusCode.NOT_FOUND
    assert mounts_under(rig.daemon.root / "containers") == []
    assert not (rig.daemon.root / "containers" / cid).exists()


def test_exec_sync_output_exit_code_and_timeout(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    cid = rig.run(pod, container_config(command=("/bin/sleep", "3600"),
                                        envs=[pb.KeyValue(key="CRT", value=b"v1")]))
    res = rig.exec(cid, "/bin/sh", "-c", "echo $CRT; echo e >&2; exit 7")
    assert (res.stdout, res.stderr, res.exit_code) == (b"v1\n", b"e\n", 7)
    assert rig.exec(cid, "/bin/true").exit_code == 0
    start = time.monotonic()
    assert code_of(lambda: rig.exec(cid, "/bin/sleep", "30", timeout=1)) == \
        grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - start < 5
    ps = rig.exec(cid, "/bin/ps", "-o", "pid,stat,comm").stdout.decode()
    assert "sleep 30" not in ps and " Z " not in ps, ps
    with CriClient(rig.daemon.socket) as client:  # allows 64 MiB replies, as kubelet 16
        big = client.runtime.ExecSync(pb.ExecSyncRequest(
            container_id=cid, cmd=["/bin/sh", "-c", "head -c 20000000 /dev/zero"], timeout=30))
    assert len(big.stdout) == 16 * 1024 * 1024 - 16 * 1024 and big.exit_code == 0
    rig.stop(cid)
    assert code_of(lambda: rig.exec(cid, "/bin/true")) == grpc.StatusCode.FAILED_PRECONDITION


def test_stop_signal_timeout_and_idempotence(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    script = 'trap "echo got-usr1; exit 0" USR1; while :; do sleep 0.1; done'
    cid = rig.run(pod, container_config(command=("/bin/sh", "-c", script),
                                        stop_signal=pb.SIGNAL_SIGUSR1))
    time.sleep(0.3)  # let the shell install its trap
    start = time.monotonic()
    rig.stop(cid, timeout=10)
    assert time.monotonic() - start < 5
    st = rig.status(cid).status
    assert (st.state, st.exit_code, st.reason) == (pb.CONTAINER_EXITED, 0, "Completed")
    rig.stop(cid, timeout=10)  # again: fine
    stubborn = rig.run(pod, container_config(command=("/bin/sh", "-c",
                                                      'trap "" TERM; sleep 3600')))
    time.sleep(0.3)  # as above: a TERM before the trap is set ends the shell at once
    start = time.monotonic()
    rig.stop(stubborn, timeout=1)
    assert 0.9 < time.monotonic() - start < 5
    assert rig.status(stubborn).status.exit_code == 137
    rig.stop("0" * 64)  # unknown: idempotent too


def test_exit_noticed_within_a_second(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    cid = rig.run(pod, container_config(command=("/bin/sleep", "3600")))
    pid = json.loads(rig.status(cid, verbose=True).info["info"])["pid"]
    import os
    import signal
    os.kill(pid, signal.SIGKILL)
    start = time.monotonic()
    wait_for("exited", lambda: rig.status(cid).status.state == pb.CONTAINER_EXITED, 1.0)
    assert time.monotonic() - start < 1.0
    assert rig.status(cid).status.exit_code == 137
