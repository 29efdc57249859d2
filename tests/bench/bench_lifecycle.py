"""The container lifecycle as crictl and the kubelet drive it (issue 13), with a workload that
leaves a child behind: `sh -c "trap 'exit 0' TERM; sleep 86400 & wait"`.

Two PID namespace modes: POD (0, what crictl sends when a config sets no namespace options and
what `shareProcessNamespace: true` gets: the container has no PID namespace of its own, so its
`sleep` outlives the shell unless the runtime empties the cgroup) and CONTAINER (1, the
kubelet's default). For each:

- ``lifecycle_<mode>``: CreateContainer+StartContainer and StopContainer+RemoveContainer
  medians, one container at a time in one host-network pod. The stop is graceful (timeout
  10 s): SIGTERM ends the shell through its trap, the runtime must end the `sleep`.
- ``teardown_100_<mode>``: 100 running containers in 50 pods, then the wall time of stopping
  and removing everything as the kubelet does when a node drains (per pod: stop and remove its
  containers, then stop and remove the pod), one call at a time.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable

import grpc

from crid.api import api_pb2 as pb
from tests.bench.api import BenchContext, benchmark, latency_figures
from tests.bench.bench_containers import _children, _image, _pod_config
from tests.rig.cri_client import CriClient

WORKLOAD = ("/bin/sh", "-c", "trap 'exit 0' TERM; sleep 86400 & wait")
STOP_TIMEOUT = 10
MODES = {"pod_pid": pb.POD, "container_pid": pb.CONTAINER}
Pod = tuple[str, pb.PodSandboxConfig]


def _run_pod(client: CriClient, ctx: BenchContext, pid_mode: int) -> Pod:
    cfg = _pod_config(ctx, f"crt-bench-{secrets.token_hex(4)}", pid_mode)
    resp = client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60)
    return resp.pod_sandbox_id, cfg


def _create(client: CriClient, pod: Pod, image: str, pid_mode: int) -> str:
    name = f"c{secrets.token_hex(4)}"
    linux = pb.LinuxContainerConfig()
    if pid_mode != pb.POD:  # crictl leaves the field unset; the kubelet sends CONTAINER
        linux.security_context.namespace_options.pid = pid_mode
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name),
                             image=pb.ImageSpec(image=image), command=list(WORKLOAD),
                             log_path=f"{name}.log", linux=linux)
    return client.runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pod[0], config=cfg, sandbox_config=pod[1]), timeout=60).container_id


def _start(client: CriClient, cid: str) -> None:
    client.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)


def _await_workload(client: CriClient, cid: str) -> None:
    """Untimed: wait until the shell has forked its `sleep` (so its trap is set). A SIGTERM
    that reaches a PID-namespace init before its trap is dropped by the kernel, and the stop
    would measure the grace period instead of the runtime."""
    info = client.runtime.ContainerStatus(pb.ContainerStatusRequest(
        container_id=cid, verbose=True), timeout=30).info
    pid = int(json.loads(info.get("info", "{}")).get("pid", 0))
    if not pid:
        raise RuntimeError(f"container {cid}: no pid in its verbose status")
    deadline = time.monotonic() + 30
    while not _children(pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"container {cid}: the shell forked nothing in 30 s")
        time.sleep(0.005)


def _stop_remove(client: CriClient, cid: str) -> None:
    client.runtime.StopContainer(pb.StopContainerRequest(container_id=cid,
                                                         timeout=STOP_TIMEOUT), timeout=60)
    client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=60)


def _remove_pod(client: CriClient, pod_id: str) -> None:
    client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)
    client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                                    timeout=120)


def _quietly(call: Callable[[], object]) -> None:
    """Clean-up after a failed figure: what is already gone is fine."""
    try:
        call()
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.NOT_FOUND:  # type: ignore[attr-defined]
            raise


def _lifecycle(client: CriClient, ctx: BenchContext, pid_mode: int) -> dict[str, float]:
    image = _image(client, ctx)
    rounds = 5 if ctx.quick else 30
    create_start, stop_remove = [], []
    pod = _run_pod(client, ctx, pid_mode)
    try:
        warm = _create(client, pod, image, pid_mode)  # caches, the image's first mount
        _start(client, warm)
        _await_workload(client, warm)
        _stop_remove(client, warm)
        for _ in range(rounds):
            start = time.perf_counter()
            cid = _create(client, pod, image, pid_mode)
            _start(client, cid)
            create_start.append(time.perf_counter() - start)
            _await_workload(client, cid)
            start = time.perf_counter()
            _stop_remove(client, cid)
            stop_remove.append(time.perf_counter() - start)
    finally:
        _quietly(lambda: _remove_pod(client, pod[0]))
    return latency_figures("create_start", create_start) | \
        latency_figures("stop_remove", stop_remove)


def _teardown(client: CriClient, ctx: BenchContext, pid_mode: int) -> dict[str, float]:
    image = _image(client, ctx)
    pods_n = 5 if ctx.quick else 50
    pods: dict[str, list[str]] = {}
    try:
        for _ in range(pods_n):
            pod = _run_pod(client, ctx, pid_mode)
            pods[pod[0]] = []
            for _ in range(2):
                pods[pod[0]].append(_create(client, pod, image, pid_mode))
                _start(client, pods[pod[0]][-1])
        for cids in pods.values():
            for cid in cids:
                _await_workload(client, cid)
        start = time.perf_counter()
        for pod_id in list(pods):
            for cid in pods[pod_id]:
                _stop_remove(client, cid)
            _remove_pod(client, pod_id)
            del pods[pod_id]
        seconds = time.perf_counter() - start
    finally:
        for pod_id in pods:
            _quietly(lambda p=pod_id: _remove_pod(client, p))
    return {"teardown_s": seconds, "containers": float(2 * pods_n)}


def _register(mode: str, pid_mode: int) -> None:
    def lifecycle(client: CriClient, ctx: BenchContext) -> dict[str, float]:
        return _lifecycle(client, ctx, pid_mode)

    def teardown(client: CriClient, ctx: BenchContext) -> dict[str, float]:
        return _teardown(client, ctx, pid_mode)

    lifecycle.__doc__ = (f"Create+Start and graceful Stop+Remove medians of the trap/sleep "
                         f"shell, PID namespace mode {mode}.")
    teardown.__doc__ = (f"Stop and remove 100 running trap/sleep shells in 50 pods, "
                        f"PID namespace mode {mode}.")
    benchmark(f"lifecycle_{mode}")(lifecycle)
    benchmark(f"teardown_100_{mode}")(teardown)


for _mode, _pid in MODES.items():
    _register(_mode, _pid)
