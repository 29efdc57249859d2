"""Container benchmarks (issue 6): create+start, stop+remove, ExecSync, ListContainers with
100 containers in 50 pods, and the memory of the runtime with its monitors/shims.

Pods use the host network (no bridge, no CNI) so only container work is measured, under the
bench cgroup parent. Memory is summed PSS (`/proc/<pid>/smaps_rollup`) of the runtime daemon,
its direct children (crid's zygote) and the parents of every container process (crid's
monitors, containerd's shims).
"""

from __future__ import annotations

import json
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from crid.api import api_pb2 as pb
from tests.bench.api import BenchContext, benchmark, latency_figures
from tests.bench.cgroups import CGROUP_PARENT
from tests.rig import catalog
from tests.rig.cri_client import CriClient
from tests.rig.distribution import DistributionClient
from tests.rig.images import push

BUSYBOX_REPO = "crt-rig/busybox"
SLEEP = ("/bin/sleep", "3600")
Pod = tuple[str, pb.PodSandboxConfig]


def _image(client: CriClient, ctx: BenchContext) -> str:
    def build() -> str:
        push(DistributionClient(ctx.registry), BUSYBOX_REPO, catalog.busybox_image(), tag="1.0")
        return ctx.registry.ref(BUSYBOX_REPO, "1.0")
    ref = ctx.once("busybox-image", build)
    if client.image_status(ref) is None:
        client.pull_image(ref, timeout=120)
    return ref


def _pod_config(ctx: BenchContext, name: str, pid: int = pb.POD) -> pb.PodSandboxConfig:
    """A host-network pod; ``pid`` its PID namespace mode (POD, the protobuf default, unless
    told)."""
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="crt-bench"),
        log_directory=str(ctx.workdir / "logs" / name),
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=CGROUP_PARENT,
            security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pid))))


@contextmanager
def _pods(client: CriClient, ctx: BenchContext, count: int) -> Iterator[list[Pod]]:
    pods: list[Pod] = []
    try:
        for _ in range(count):
            cfg = _pod_config(ctx, f"crt-bench-{secrets.token_hex(4)}")
            resp = client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60)
            pods.append((resp.pod_sandbox_id, cfg))
        yield pods
    finally:
        for pod_id, _ in pods:
            client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                                          timeout=120)
            client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                                            timeout=120)


def _create(client: CriClient, pod: Pod, image: str,
            cmd: tuple[str, ...] = SLEEP) -> str:
    name = f"c{secrets.token_hex(4)}"
    cfg = pb.ContainerConfig(metadata=pb.ContainerMetadata(name=name),
                             image=pb.ImageSpec(image=image), command=list(cmd),
                             log_path=f"{name}.log")
    return client.runtime.CreateContainer(pb.CreateContainerRequest(
        pod_sandbox_id=pod[0], config=cfg, sandbox_config=pod[1]), timeout=60).container_id


def _start(client: CriClient, cid: str) -> None:
    client.runtime.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)


def _stop_remove(client: CriClient, cid: str) -> None:
    client.runtime.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0),
                                 timeout=60)
    client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=60)


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


@benchmark("container_lifecycle")
def container_lifecycle(client: CriClient, ctx: BenchContext) -> dict[str, float]:
    """CreateContainer+StartContainer, then StopContainer(timeout 0)+RemoveContainer, of a
    busybox `sleep` in a host-network pod, sequentially."""
    image = _image(client, ctx)
    rounds = 5 if ctx.quick else 30
    create_start, stop_remove = [], []
    with _pods(client, ctx, 1) as pods:
        _stop_remove(client, _create(client, pods[0], image))  # warm caches
        for _ in range(rounds):
            start = time.perf_counter()
            cid = _create(client, pods[0], image)
            _start(client, cid)
            create_start.append(time.perf_counter() - start)
            stop_remove.append(_timed(lambda c=cid: _stop_remove(client, c)))
    return latency_figures("create_start", create_start) | \
        latency_figures("stop_remove", stop_remove)


@benchmark("container_exec_sync")
def container_exec_sync(client: CriClient, ctx: BenchContext) -> dict[str, float]:
    """ExecSync of `true` in a running container, sequentially."""
    image = _image(client, ctx)
    calls = 10 if ctx.quick else 100
    with _pods(client, ctx, 1) as pods:
        cid = _create(client, pods[0], image)
        _start(client, cid)
        req = pb.ExecSyncRequest(container_id=cid, cmd=["/bin/true"], timeout=10)
        for _ in range(3):
            client.runtime.ExecSync(req, timeout=30)
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            resp = client.runtime.ExecSync(req, timeout=30)
            times.append(time.perf_counter() - start)
            if resp.exit_code != 0:
                raise RuntimeError(f"{ctx.runtime}: exec of true exited {resp.exit_code}")
    return latency_figures("exec_sync", times)


@benchmark("containers_100")
def containers_100(client: CriClient, ctx: BenchContext) -> dict[str, float]:
    """ListContainers latency (p99) with 100 running containers in 50 pods, and the summed
    PSS of the runtime plus its monitors/shims."""
    image = _image(client, ctx)
    pods_n, per_pod = (5, 2) if ctx.quick else (50, 2)
    with _pods(client, ctx, pods_n) as pods:
        cids = []
        for pod in pods:
            for _ in range(per_pod):
                cids.append(_create(client, pod, image))
                _start(client, cids[-1])
        req = pb.ListContainersRequest()
        for _ in range(10):
            client.runtime.ListContainers(req, timeout=30)
        times = []
        for _ in range(100 if ctx.quick else 1000):
            start = time.perf_counter()
            listed = client.runtime.ListContainers(req, timeout=30).containers
            times.append(time.perf_counter() - start)
        if len(listed) < len(cids):
            raise RuntimeError(f"{ctx.runtime} listed {len(listed)} of {len(cids)} containers")
        memory = _pss_mib(client, ctx.pid, cids)
    ordered = sorted(times)
    return {"list_median_ms": statistics.median(ordered) * 1000,
            "list_p99_ms": ordered[int(0.99 * (len(ordered) - 1))] * 1000,
            "containers": float(len(cids)), **memory}


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _pss_mib(client: CriClient, daemon_pid: int, cids: list[str]) -> dict[str, float]:
    """PSS of the daemon, its children, and each container process's parent (monitor/shim);
    ``container_parent_pss_mean_kib``: the mean over those parents alone (crid: one monitor
    per container, issue 3's ≤ 1 MiB; containerd: one shim per pod)."""
    helpers: set[int] = set(_children(daemon_pid))
    parents: set[int] = set()
    for cid in cids:
        info = client.runtime.ContainerStatus(pb.ContainerStatusRequest(
            container_id=cid, verbose=True), timeout=30).info
        pid = int(json.loads(info.get("info", "{}")).get("pid", 0))
        if pid and _ppid(pid) not in (0, 1, daemon_pid):
            parents.add(_ppid(pid))
    helpers |= parents
    helpers.discard(daemon_pid)
    daemon = _pss_kib(daemon_pid) / 1024
    others = sum(_pss_kib(p) for p in helpers) / 1024
    parent_kib = [_pss_kib(p) for p in parents]
    return {"daemon_pss_mib": daemon, "helpers_pss_mib": others,
            "helper_processes": float(len(helpers)), "total_pss_mib": daemon + others,
            "container_parent_pss_mean_kib": statistics.mean(parent_kib) if parent_kib
            else float("nan")}
