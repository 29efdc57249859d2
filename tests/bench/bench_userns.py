"""User-namespaced pods (hostUsers: false): RunPodSandbox and container create+start in such a
pod, beside the same work without a user namespace in the same run.

The peer figure is the plain one: containerd 1.6 has no CRI user namespaces (they came with
containerd 2.0), so on it only the plain half runs; crid's userns/plain ratio is its own cost
of the user namespace, idmapped layers and idmapped binds.

Figures: run_{plain,userns}_{median,p95}_ms, create_start_{plain,userns}_{median,p95}_ms.
"""

from __future__ import annotations

import secrets
import time

from crid.api import api_pb2 as pb
from tests.bench.api import BenchContext, benchmark, latency_figures
from tests.bench.bench_containers import _create, _image, _start, _stop_remove
from tests.bench.cgroups import CGROUP_PARENT
from tests.rig.cri_client import CriClient

RUNS = 30
RANGE = 65536


def _config(ctx: BenchContext, userns: int | None) -> pb.PodSandboxConfig:
    name = f"crt-bench-uns-{secrets.token_hex(4)}"
    ns = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD)
    if userns is not None:  # the kubelet's shape: one range of 65536 from a multiple of it
        m = [pb.IDMapping(container_id=0, host_id=userns * RANGE, length=RANGE)]
        ns.userns_options.CopyFrom(pb.UserNamespace(mode=pb.POD, uids=m, gids=m))
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="crt-bench"),
        hostname=name, log_directory=str(ctx.workdir / "logs" / name),
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=CGROUP_PARENT,
            security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns)))


def _supports_userns(client: CriClient) -> bool:
    st = client.runtime.Status(pb.StatusRequest(), timeout=30)
    return any(h.name == "" and h.features.user_namespaces for h in st.runtime_handlers)


def _half(client: CriClient, ctx: BenchContext, image: str, rounds: int,
          userns: bool) -> dict[str, list[float]]:
    runs, create_start, pods = [], [], []
    try:
        for i in range(rounds):
            cfg = _config(ctx, 400 + i if userns else None)
            start = time.perf_counter()
            pod_id = client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg),
                                                  timeout=120).pod_sandbox_id
            runs.append(time.perf_counter() - start)
            pods.append(pod_id)
            start = time.perf_counter()
            cid = _create(client, (pod_id, cfg), image)
            _start(client, cid)
            create_start.append(time.perf_counter() - start)
            _stop_remove(client, cid)
    finally:
        for pod_id in pods:
            client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id),
                                          timeout=120)
            client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                                            timeout=120)
    return {"run": runs, "create_start": create_start}


@benchmark("userns_pod")
def userns_pod(client: CriClient, ctx: BenchContext) -> dict[str, float]:
    """RunPodSandbox, then CreateContainer+StartContainer of busybox sleep, with and without
    a pod user namespace (only without where the runtime has none), sequentially."""
    image = _image(client, ctx)
    rounds = 5 if ctx.quick else RUNS
    halves = {"plain": _half(client, ctx, image, rounds, userns=False)}
    if _supports_userns(client):
        halves["userns"] = _half(client, ctx, image, rounds, userns=True)
    out: dict[str, float] = {}
    for kind, h in halves.items():
        out |= latency_figures(f"run_{kind}", h["run"])
        out |= latency_figures(f"create_start_{kind}", h["create_start"])
    return out
