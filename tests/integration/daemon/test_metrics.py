"""Prometheus metrics scraped over HTTP from a real daemon after real CRI calls."""

from __future__ import annotations

import json
import os
import secrets
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker
import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from crid.api import api_pb2 as pb
from crid.version import CRI_API_VERSION, __version__
from tests.integration.containers.conftest import serving, write_config
from tests.integration.containers.helpers import ContainerRig, container_config, wait_for
from tests.integration.daemon.test_errors import _closed_port
from tests.integration.pods.helpers import cleanup_cgroup_parent
from tests.rig import daemon as rig_daemon
from tests.rig.daemon import CridProcess, remove_test_network, start_crid
from tests.rig.images import BuiltImage
from tests.rig.registry import Registry

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def rig(tmp_path: Path, registry: Registry, busybox_image: BuiltImage) -> Iterator[ContainerRig]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    bridge = f"crtm{secrets.token_hex(3)}"
    parent = f"/crt-ctr-{secrets.token_hex(4)}"
    cfg = write_config(tmp_path, bridge)
    # Port 0: the kernel picks a free one, the daemon logs the URL it bound.
    cfg.write_text(cfg.read_text() + '[metrics]\nenable = true\nlisten = "127.0.0.1:0"\n')
    daemon = start_crid(tmp_path, config=cfg)
    with serving(ContainerRig(tmp_path, cfg, daemon, parent, bridge), registry, busybox_image,
                 lambda: cleanup_cgroup_parent(parent)) as r:
        yield r


def metrics_url(daemon: CridProcess) -> str:
    lines = [json.loads(x) for x in daemon.log().splitlines() if x.startswith("{")]
    (url,) = [x["url"] for x in lines if x.get("event") == "serving metrics"][-1:]
    return str(url)


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _docker_pulls(rig: ContainerRig, unreachable: str) -> None:
    """`docker pull` of the rig's image (present) and of an unreachable one, on crid's
    Docker socket."""
    api = docker.APIClient(base_url=f"unix://{rig.daemon.run_root / 'docker.sock'}",
                           version="1.41", timeout=60)
    try:
        assert rig.image is not None
        api.pull(rig.image)
        with pytest.raises(docker.errors.APIError):
            for event in api.pull(unreachable, stream=True, decode=True):
                if "error" in event:  # the CLI's way: the stream's last message says it failed
                    raise docker.errors.APIError(event["error"])
    finally:
        api.close()


def test_metrics_after_real_calls(rig: ContainerRig, busybox_image: BuiltImage) -> None:
    pod = rig.run_pod()
    rig.run(pod, container_config(command=("/bin/sh", "-c", "trap 'exit 0' TERM; "
                                           "sleep 86400 & wait")))
    limit = pb.LinuxContainerConfig(resources=pb.LinuxContainerResources(
        memory_limit_in_bytes=16 * 1024 * 1024))
    oom = rig.run(pod, container_config(command=("/bin/sh", "-c", "x=a; while :; do x=$x$x; done"),
                                        linux=limit))
    wait_for("OOM kill", lambda: rig.status(oom).status.state == pb.CONTAINER_EXITED, 20)
    with pytest.raises(grpc.RpcError):
        rig.rt.ContainerStatus(pb.ContainerStatusRequest(container_id="crt-missing"))
    unreachable = f"127.0.0.1:{_closed_port()}/crt/nothing:1.0"
    with pytest.raises(grpc.RpcError):
        rig.daemon.images.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=unreachable)))
    _docker_pulls(rig, unreachable)

    m = scrape(metrics_url(rig.daemon))
    assert value(m, "crid_operations_total", operation="PullImage", code="OK") == 1
    assert value(m, "crid_operations_total", operation="RunPodSandbox", code="OK") == 1
    assert value(m, "crid_operations_total", operation="StartContainer", code="OK") == 2
    assert value(m, "crid_operations_total", operation="ContainerStatus", code="NOT_FOUND") == 1
    assert value(m, "crid_operations_errors_total", operation="ContainerStatus",
                 code="NOT_FOUND") == 1
    assert value(m, "crid_operations_errors_total", operation="RunPodSandbox", code="OK") == 0
    assert value(m, "crid_operations_latency_seconds_count", operation="CreateContainer",
                 code="OK") == 2
    assert value(m, "crid_operations_latency_seconds_bucket", operation="CreateContainer",
                 code="OK", le="+Inf") == 2
    # Two pulls per door: the Docker API's count as the CRI's; the image's layers are fetched
    # once, by the first.
    assert value(m, "crid_image_pulls_success_total") == 2
    assert value(m, "crid_image_pulls_failure_total", code="UNAVAILABLE") == 2
    assert value(m, "crid_image_pull_duration_seconds_count") == 4
    assert value(m, "crid_image_pulls_bytes_total") == sum(x.size for x in busybox_image.layers)
    assert value(m, "crid_containers", state="running") == 1
    assert value(m, "crid_containers", state="exited") == 1
    assert value(m, "crid_containers", state="created") == 0
    assert value(m, "crid_pods", state="ready") == 1
    assert value(m, "crid_containers_oom_total") == 1
    assert value(m, "crid_streaming_sessions") == 0
    assert value(m, "crid_build_info", version=__version__, cri_version=CRI_API_VERSION) == 1
    assert value(m, "process_start_time_seconds") > 0


def test_taken_metrics_port_fails_start_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg, bridge = rig_daemon.test_network_config(tmp_path)
        cfg.write_text(cfg.read_text() + f'[metrics]\nenable = true\nlisten = "127.0.0.1:{port}"\n')
        daemon = start_crid(tmp_path, config=cfg, wait=False)
        try:
            assert daemon.proc.wait(60) == 1
        finally:
            daemon.stop()
            remove_test_network(bridge)
    lines = [json.loads(x) for x in daemon.log().splitlines() if x.startswith("{")]
    (failure,) = [x for x in lines if x.get("event") == "cannot start"]
    assert failure["error"] == f"metrics on 127.0.0.1:{port}: Address already in use"
    assert "Traceback" not in daemon.log()
    assert not daemon.socket.exists()
