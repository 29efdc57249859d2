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
