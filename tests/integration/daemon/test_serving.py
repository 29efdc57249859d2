"""The daemon serves CRI v1, health and reflection on its unix socket."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from crid.api import api_pb2 as pb
from tests.rig.daemon import CridProcess


def test_version(crid: CridProcess) -> None:
    v = crid.runtime.Version(pb.VersionRequest(version="0.1.0"))
    assert (v.version, v.runtime_name, v.runtime_api_version) == ("0.1.0", "crid", "v1")
    assert v.runtime_version == "0.1.0"


def test_status_reports_both_conditions(crid: CridProcess) -> None:
    resp = crid.runtime.Status(pb.StatusRequest())
    conds = {c.type: c for c in resp.status.conditions}
    assert sorted(conds) == ["NetworkReady", "RuntimeReady"]
    assert conds["RuntimeReady"].status is True
    net = conds["NetworkReady"]
    assert net.status or (net.reason and net.message)
    assert [h.name for h in resp.runtime_handlers] == ["", "crid"]
    assert resp.info == {}


def test_status_verbose_has_config(crid: CridProcess) -> None:
    resp = crid.runtime.Status(pb.StatusRequest(verbose=True))
    cfg = json.loads(resp.info["config"])
    assert cfg["root"] == str(crid.root)
    assert cfg["network"]["pod_cidr"].startswith("10.216.")


def test_runtime_config_defaults_to_cgroupfs(crid: CridProcess) -> None:
    resp = crid.runtime.RuntimeConfig(pb.RuntimeConfigRequest())
    assert resp.linux.cgroup_driver == pb.CgroupDriver.CGROUPFS


def test_image_fs_info_answers_for_images_and_containers(crid: CridProcess) -> None:
    resp = crid.images.ImageFsInfo(pb.ImageFsInfoRequest())
    (fs,) = resp.image_filesystems
    assert fs.fs_id.mountpoint and fs.timestamp > 0
    (cfs,) = resp.container_filesystems
    assert cfs.fs_id.mountpoint == str(crid.root / "containers")


def test_update_runtime_config_keeps_pod_cidr(tmp_path: Path, crid: CridProcess) -> None:
    req = pb.UpdateRuntimeConfigRequest(runtime_config=pb.RuntimeConfig(
        network_config=pb.NetworkConfig(pod_cidr="10.244.3.0/24,fd00:10:244:3::/64")))
    crid.runtime.UpdateRuntimeConfig(req)
    info = crid.runtime.Status(pb.StatusRequest(verbose=True)).info
    assert json.loads(info["network"]) == {"pod_cidrs": ["10.244.3.0/24", "fd00:10:244:3::/64"]}


def test_update_runtime_config_rejects_bad_cidr(crid: CridProcess) -> None:
    req = pb.UpdateRuntimeConfigRequest(runtime_config=pb.RuntimeConfig(
        network_config=pb.NetworkConfig(pod_cidr="10.300.0.0/16")))
    with pytest.raises(grpc.RpcError) as e:
        crid.runtime.UpdateRuntimeConfig(req)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "10.300.0.0/16" in e.value.details()
    crid.runtime.Version(pb.VersionRequest())  # still serving


@pytest.mark.parametrize("rpc, request_type", [
    ("CheckpointContainer", pb.CheckpointContainerRequest),
    ("CheckpointPod", pb.CheckpointPodRequest)])
def test_other_rpcs_are_unimplemented_by_name(crid: CridProcess, rpc: str,
                                              request_type: type) -> None:
    with pytest.raises(grpc.RpcError) as e:
        getattr(crid.runtime, rpc)(request_type())
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert rpc in e.value.details()


def test_event_stream_stays_open(crid: CridProcess) -> None:
    # Every streaming RPC is implemented now; the UNIMPLEMENTED filler for streams is covered
    # by tests/unit/daemon/test_unimplemented.py.
    with pytest.raises(grpc.RpcError) as e:
        list(crid.runtime.GetContainerEvents(pb.GetEventsRequest(), timeout=0.5))
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_socket_mode_is_0660(crid: CridProcess) -> None:
    assert stat.S_IMODE(crid.socket.stat().st_mode) == 0o660


def test_health_and_reflection(crid: CridProcess) -> None:
    health = health_pb2_grpc.HealthStub(crid.channel)
    for service in ("", "runtime.v1.RuntimeService", "runtime.v1.ImageService"):
        resp = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(crid.channel)
    (resp,) = refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
        list_services="")]))
    names = {s.name for s in resp.list_services_response.service}
    assert {"runtime.v1.RuntimeService", "runtime.v1.ImageService"} <= names


def test_rpc_is_logged_with_duration(crid: CridProcess) -> None:
    crid.runtime.Version(pb.VersionRequest())
    lines = [json.loads(line) for line in crid.log().splitlines() if line.startswith("{")]
    rpcs = [r for r in lines if r.get("event") == "rpc" and r.get("method") == "Version"]
    assert rpcs and rpcs[-1]["status"] == "OK" and "duration_ms" in rpcs[-1]
