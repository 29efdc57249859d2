"""ListContainers, ListPodSandbox and the status RPCs answer from prebuilt messages (crid/server/
wire.py): every state change must show in them, filters must pick exactly what they name, and the
stats' CPU rate must be there without the caller sampling twice."""

from __future__ import annotations

import secrets
import time

import grpc

from crid.api import api_pb2 as pb
from tests.integration.containers.helpers import (
    PREFIX,
    ContainerRig,
    code_of,
    container_config,
    wait_for,
)
from tests.integration.pods.helpers import pod_config

RUNNING = pb.ContainerStateValue(state=pb.CONTAINER_RUNNING)
CREATED = pb.ContainerStateValue(state=pb.CONTAINER_CREATED)
EXITED = pb.ContainerStateValue(state=pb.CONTAINER_EXITED)


def _listed(rig: ContainerRig, **kw: object) -> dict[str, pb.Container]:
    """List and Stream must agree; a container that exits on its own may change state between
    the two calls, so a disagreement counts only if a second List confirms the first."""
    f = pb.ContainerFilter(**kw)  # type: ignore[arg-type]
    resp = rig.rt.ListContainers(pb.ListContainersRequest(filter=f))
    streamed = sorted(c.id for r in rig.rt.StreamContainers(pb.StreamContainersRequest(filter=f))
                      for c in r.containers)
    if streamed != sorted(c.id for c in resp.containers):
        again = rig.rt.ListContainers(pb.ListContainersRequest(filter=f))
        assert streamed == sorted(c.id for c in again.containers)
        resp = again
    return {c.id: c for c in resp.containers}


def _states(rig: ContainerRig, **kw: object) -> dict[str, int]:
    return {i: c.state for i, c in _listed(rig, **kw).items()}


def _pods(rig: ContainerRig, **kw: object) -> dict[str, int]:
    f = pb.PodSandboxFilter(**kw)  # type: ignore[arg-type]
    items = rig.rt.ListPodSandbox(pb.ListPodSandboxRequest(filter=f)).items
    streamed = [p.id for r in rig.rt.StreamPodSandboxes(pb.StreamPodSandboxesRequest(filter=f))
                for p in r.pod_sandboxes]
    assert sorted(streamed) == sorted(p.id for p in items)
    return {p.id: p.state for p in items}


def test_container_list_and_status_follow_every_state_change(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    web = rig.create(pod, container_config(command=("/bin/sleep", "3600"),
                                           labels={"tier": "web"}))
    db = rig.create(pod, container_config(command=("/bin/sleep", "3600"),
                                          labels={"tier": "db"}))
    assert _states(rig) == {web: pb.CONTAINER_CREATED, db: pb.CONTAINER_CREATED}
    item = _listed(rig)[web]
    assert (item.pod_sandbox_id, dict(item.labels), item.image.user_specified_image) == (
        pod[0], {"crt": "yes", "tier": "web"}, rig.image)
    assert rig.status(web).status.state == pb.CONTAINER_CREATED

    rig.rt.StartContainer(pb.StartContainerRequest(container_id=web))
    assert _states(rig) == {web: pb.CONTAINER_RUNNING, db: pb.CONTAINER_CREATED}
    assert _states(rig, state=RUNNING) == {web: pb.CONTAINER_RUNNING}
    assert _states(rig, state=CREATED) == {db: pb.CONTAINER_CREATED}
    assert _states(rig, label_selector={"tier": "db"}) == {db: pb.CONTAINER_CREATED}
    assert _states(rig, label_selector={"tier": "web"}, state=CREATED) == {}
    st = rig.status(web).status
    assert (st.state, st.started_at > 0, st.finished_at) == (pb.CONTAINER_RUNNING, True, 0)

    rig.stop(web)
    assert _states(rig, state=EXITED) == {web: pb.CONTAINER_EXITED}
    assert _states(rig, state=RUNNING) == {}
    st = rig.status(web).status
    assert (st.state, st.exit_code, st.finished_at >= st.started_at) == (
        pb.CONTAINER_EXITED, 137, True)

    rig.remove(web)
    assert _states(rig) == {db: pb.CONTAINER_CREATED}
    assert code_of(lambda: rig.status(web)) == grpc.StatusCode.NOT_FOUND
    assert _states(rig, id=web[:12]) == {}
    assert _states(rig, id=db[:12], pod_sandbox_id=pod[0][:12]) == {db: pb.CONTAINER_CREATED}


def test_a_container_exiting_by_itself_shows_in_list_and_status(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    cid = rig.run(pod, container_config(command=("/bin/sh", "-c", "sleep 0.3; exit 3")))
    assert rig.status(cid).status.state in (pb.CONTAINER_RUNNING, pb.CONTAINER_EXITED)
    wait_for("exit", lambda: _states(rig, state=EXITED) == {cid: pb.CONTAINER_EXITED}, 10)
    st = rig.status(cid).status
    assert (st.state, st.exit_code, st.reason) == (pb.CONTAINER_EXITED, 3, "Error")


def _run_pod(rig: ContainerRig, app: str) -> str:
    cfg = pod_config(name=f"{PREFIX}pod-{secrets.token_hex(3)}", parent=rig.cgroup_parent)
    cfg.labels["app"] = app
    pod_id = rig.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
    rig.pods.append(pod_id)
    return pod_id


def test_pod_list_and_status_follow_state_changes_and_filters(rig: ContainerRig) -> None:
    web = _run_pod(rig, "web")
    db = _run_pod(rig, "db")
    ready = pb.PodSandboxStateValue(state=pb.SANDBOX_READY)
    notready = pb.PodSandboxStateValue(state=pb.SANDBOX_NOTREADY)
    assert _pods(rig) == {web: pb.SANDBOX_READY, db: pb.SANDBOX_READY}
    assert _pods(rig, label_selector={"app": "db"}) == {db: pb.SANDBOX_READY}
    status = rig.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=web))
    assert (status.status.state, status.status.labels["app"]) == (pb.SANDBOX_READY, "web")
    assert status.timestamp >= status.status.created_at > 0

    rig.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=web))
    assert _pods(rig, state=notready) == {web: pb.SANDBOX_NOTREADY}
    assert _pods(rig, state=ready) == {db: pb.SANDBOX_READY}
    assert _pods(rig, label_selector={"app": "web"}, state=ready) == {}
    again = rig.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=web))
    assert again.status.state == pb.SANDBOX_NOTREADY
    assert again.timestamp >= status.timestamp
    verbose = rig.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=web,
                                                                 verbose=True))
    assert verbose.status == again.status and "info" in verbose.info

    rig.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=web))
    assert _pods(rig) == {db: pb.SANDBOX_READY}
    assert code_of(lambda: rig.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(
        pod_sandbox_id=web))) == grpc.StatusCode.NOT_FOUND


def test_stats_cpu_rate_needs_no_second_sample(rig: ContainerRig) -> None:
    pod = rig.run_pod()
    cid = rig.run(pod, container_config(command=("/bin/sh", "-c", "while :; do :; done")))
    wait_for("some CPU used", lambda: rig.rt.ContainerStats(pb.ContainerStatsRequest(
        container_id=cid)).stats.cpu.usage_core_nano_seconds.value > 50_000_000, 10)
    # The first call measured the rate from the container's start; a later one from it.
    first = rig.rt.ListContainerStats(pb.ListContainerStatsRequest()).stats
    assert [s.attributes.id for s in first] == [cid]
    assert first[0].cpu.usage_nano_cores.value > 0
    time.sleep(1)
    second = rig.rt.ListContainerStats(pb.ListContainerStatsRequest()).stats[0]
    assert second.cpu.timestamp > first[0].cpu.timestamp
    assert second.cpu.usage_nano_cores.value > 0
    pods = rig.rt.ListPodSandboxStats(pb.ListPodSandboxStatsRequest()).stats
    assert [p.attributes.id for p in pods] == [pod[0]]
    assert pods[0].linux.cpu.usage_nano_cores.value > 0  # the pod's first sample: from creation
    assert [c.cpu.usage_nano_cores.value > 0 for c in pods[0].linux.containers] == [True]
    assert dict(second.attributes.labels) == {"crt": "yes"}
