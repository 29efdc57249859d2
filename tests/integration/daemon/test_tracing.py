"""OpenTelemetry spans of real CRI calls, received by a collector stand-in on loopback: a span
per call continuing the caller's W3C traceparent, children for the pull, the network set-up and
the runtime's create and start."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from crid.api import api_pb2 as pb
from tests.integration.containers.conftest import serving, write_config
from tests.integration.containers.helpers import ContainerRig, container_config
from tests.integration.pods.helpers import cleanup_cgroup_parent, pod_config
from tests.rig.daemon import start_crid
from tests.rig.images import BuiltImage
from tests.rig.otlp import ReceivedSpan, Receiver, otlp_receiver
from tests.rig.registry import Registry

SERVER = 2  # SpanKind SERVER in OTLP
ERROR = 2  # Status code ERROR


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with otlp_receiver() as r:
        yield r


@pytest.fixture
def rig(tmp_path: Path, registry: Registry, busybox_image: BuiltImage,
        receiver: Receiver) -> Iterator[ContainerRig]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    bridge = f"crtt{secrets.token_hex(3)}"
    parent = f"/crt-ctr-{secrets.token_hex(4)}"
    cfg = write_config(tmp_path, bridge)
    cfg.write_text(cfg.read_text() + f'[tracing]\nenable = true\nendpoint = "{receiver.endpoint}"'
                   '\nsampling_rate = 1.0\n')
    daemon = start_crid(tmp_path, config=cfg)
    with serving(ContainerRig(tmp_path, cfg, daemon, parent, bridge), registry, busybox_image,
                 lambda: cleanup_cgroup_parent(parent)) as r:
        yield r


def _traceparent(sampled: bool = True) -> tuple[str, str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, parent_id, f"00-{trace_id}-{parent_id}-{'01' if sampled else '00'}"


def _one(spans: list[ReceivedSpan], name: str, **where: str) -> ReceivedSpan:
    (span,) = [s for s in spans if s.name == name
               and all(getattr(s, k) == v for k, v in where.items())]
    return span


def test_spans_follow_the_callers_traceparent_with_children(rig: ContainerRig,
                                                            receiver: Receiver) -> None:
    _, _, unsampled = _traceparent(sampled=False)
    rig.rt.Version(pb.VersionRequest(), metadata=[("traceparent", unsampled)])
    pod_trace, kubelet_span, tp = _traceparent()
    cfg = pod_config(name=f"crt-trace-{secrets.token_hex(3)}", parent=rig.cgroup_parent)
    cfg.log_directory = str(rig.log_dir / cfg.metadata.name)
    pod_id = rig.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60,
                                  metadata=[("traceparent", tp)]).pod_sandbox_id
    rig.pods.append(pod_id)
    ctr_trace, _, tp2 = _traceparent()
    ccfg = container_config(command=("/bin/sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait"),
                            image=rig.image)
    cid = rig.rt.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pod_id, config=ccfg, sandbox_config=cfg), timeout=60,
        metadata=[("traceparent", tp2)]).container_id
    rig.rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=30,
                          metadata=[("traceparent", tp2)])
    with pytest.raises(grpc.RpcError):
        rig.rt.ContainerStatus(pb.ContainerStatusRequest(container_id="crt-missing"))

    wanted = {"image.pull", "network.setup", "runtime.create", "runtime.start",
              "ContainerStatus"}
    spans = receiver.wait(lambda got: wanted <= {s.name for s in got})

    run = _one(spans, "RunPodSandbox")
    assert (run.trace_id, run.parent_span_id, run.kind, run.service) == \
        (pod_trace, kubelet_span, SERVER, "crid")
    assert run.attributes["rpc.grpc.status_code"] == "OK"
    assert run.attributes["crid.pod"] == f"{cfg.metadata.namespace}/{cfg.metadata.name}"
    net = _one(spans, "network.setup")
    assert (net.trace_id, net.parent_span_id, net.attributes["pod_id"]) == \
        (pod_trace, run.span_id, pod_id)

    create, start = _one(spans, "CreateContainer"), _one(spans, "StartContainer")
    assert create.trace_id == start.trace_id == ctr_trace
    assert _one(spans, "runtime.create").parent_span_id == create.span_id
    runtime_start = _one(spans, "runtime.start")
    assert (runtime_start.parent_span_id, runtime_start.attributes["container_id"]) == \
        (start.span_id, cid)

    pull = _one(spans, "PullImage")  # the rig's pull, sent without a traceparent: a root
    assert pull.parent_span_id == "" and pull.attributes["crid.image"] == rig.image
    image_pull = _one(spans, "image.pull")
    assert (image_pull.trace_id, image_pull.parent_span_id, image_pull.attributes["image"]) == \
        (pull.trace_id, pull.span_id, rig.image)

    failed = _one(spans, "ContainerStatus")
    assert (failed.status_code, failed.attributes["rpc.grpc.status_code"]) == \
        (ERROR, "NOT_FOUND")
    assert not [s for s in spans if s.name == "Version" and s.parent_span_id]  # not sampled
