"""Streaming benchmarks through the CRI: Exec RPC → URL → SPDY session → exit status.

Both runtimes get the same pod (host network, so no CNI is needed) with a busybox container
sleeping, and the same client: crid's own SPDY client (`crid.streaming.protocol.client`),
which offers v5..v1 and so speaks v4 with containerd 1.6. A runtime whose Exec is not
implemented yet is recorded as skipped (the runner maps UNIMPLEMENTED).

The throughput producer is `busybox dd bs=1M`, not `busybox head -c`: head copies through a
4 KiB buffer and is CPU-bound near 190 MB/s on the 2-core bench machine (`head -c 1G
/dev/zero | cat` alone), so it measured busybox rather than the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator

from crid.api import api_pb2 as pb
from crid.streaming.protocol.client import CommandIO, exec_spdy
from tests.bench.api import BenchContext, benchmark, latency_figures
from tests.bench.cgroups import CGROUP_PARENT
from tests.rig import catalog
from tests.rig.cri_client import CriClient
from tests.rig.distribution import DistributionClient
from tests.rig.images import push

BUSYBOX_REPO = "crt-bench/busybox"
NODE = pb.NamespaceMode.Value("NODE")


def _busybox_ref(ctx: BenchContext) -> str:
    def build_and_push() -> str:
        push(DistributionClient(ctx.registry), BUSYBOX_REPO, catalog.busybox_image(), tag="1")
        return ctx.registry.ref(BUSYBOX_REPO, "1")
    return str(ctx.once("busybox-image", build_and_push))


@contextlib.contextmanager
def _sleeping_container(client: CriClient, ctx: BenchContext) -> Iterator[str]:
    """A host-network pod with one busybox container running `sleep`; yields its id."""
    ref = _busybox_ref(ctx)
    client.pull_image(ref, timeout=300)
    ns = pb.NamespaceOption(network=NODE)
    pod_config = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name="crt-bench-exec", uid=uuid.uuid4().hex,
                                       namespace="crt-bench", attempt=0),
        log_directory=str(ctx.workdir / "pod-logs"),
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=CGROUP_PARENT,
            security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns)))
    rt = client.runtime
    pod_id = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_config),
                              timeout=120).pod_sandbox_id
    try:
        config = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name="sleeper"), image=pb.ImageSpec(image=ref),
            command=["/bin/sleep", "3600"], log_path="sleeper.log",
            linux=pb.LinuxContainerConfig(
                security_context=pb.LinuxContainerSecurityContext(namespace_options=ns)))
        cid = rt.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=config, sandbox_config=pod_config),
            timeout=120).container_id
        rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=60)
        yield cid
    finally:
        with contextlib.suppress(Exception):
            rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
            rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)


def _exec(client: CriClient, cid: str, cmd: list[str], io: CommandIO) -> int:
    url = client.runtime.Exec(pb.ExecRequest(
        container_id=cid, cmd=cmd, stdout=io.stdout is not None,
        stderr=io.stderr is not None), timeout=30).url
    return asyncio.run(exec_spdy(url, io)).exit_code


@benchmark("exec_true_rtt")
def exec_true_rtt(client: CriClient, ctx: BenchContext) -> dict[str, float]:
    """Exec RPC of `true` until its exit status arrives over SPDY (issue: ≤ 0.5× containerd)."""
    runs = 10 if ctx.quick else 50
    with _sleeping_container(client, ctx) as cid:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            code = _exec(client, cid, ["/bin/true"],
                         CommandIO(stdout=lambda b: None, stderr=lambda b: None))
            times.append(time.perf_counter() - start)
            if code != 0:
                raise RuntimeError(f"{ctx.runtime}: exec true exited {code}")
    return latency_figures("exec_true", times)


@benchmark("exec_stdout_throughput")
def exec_stdout_throughput(client: CriClient, ctx: BenchContext) -> dict[str, float]:
    """Stdout of `dd if=/dev/zero bs=1M count=N` streamed over exec/SPDY (issue: ≥ 200 MB/s)."""
    size = (64 if ctx.quick else 1024) << 20
    received = [0]

    def count(chunk: bytes) -> None:
        received[0] += len(chunk)

    with _sleeping_container(client, ctx) as cid:
        start = time.perf_counter()
        code = _exec(client, cid, ["/bin/busybox", "dd", "if=/dev/zero", "bs=1048576",
                                   f"count={size >> 20}"],
                     CommandIO(stdout=count, stderr=lambda b: None))
        seconds = time.perf_counter() - start
    if code != 0 or received[0] != size:
        raise RuntimeError(f"{ctx.runtime}: exit {code}, {received[0]} of {size} bytes")
    return {"exec_stdout_mb_per_s": size / seconds / 1e6, "exec_stdout_s": seconds}
