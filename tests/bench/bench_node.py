"""A full node's steady cost (issue 14), at 100 running containers in 50 pods:

- ListContainers / ListPodSandbox latency over an empty Version call (the kubelet relists every
  second), and crictl ps's follow-up ContainerStatus per container;
- ListContainerStats / ListPodSandboxStats latency (the kubelet scrapes every 10 s);
- summed PSS of the runtime daemon, its children and every container's parent (monitor/shim);
- CPU of that process tree under kubelet-like polling: ListPodSandbox + ListContainers every
  second, ListContainerStats + ListPodSandboxStats every 10 s, 5 ExecSync probes a second.

Pods use the host network (as containers_100 does), under the bench cgroup parent.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from crid.api import api_pb2 as pb
from tests.bench.api import BenchContext, benchmark
from tests.bench.bench_containers import _create, _image, _pods, _pss_mib, _start
from tests.rig.cri_client import CriClient

PODS, PER_POD = 50, 2
POLL_SECONDS = 60.0
PROBES_PER_SECOND = 5
_TICK = os.sysconf("SC_CLK_TCK")


def _median_ms(call: Callable[[], object], rounds: int) -> float:
    for _ in range(min(10, rounds)):
        call()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


@benchmark("node_100")
def node_100(client: CriClient, ctx: BenchContext) -> dict[str, float]:
    """List, stats, memory and kubelet-like polling CPU at 100 containers in 50 pods."""
    image = _image(client, ctx)
    pods_n, per_pod = (5, 2) if ctx.quick else (PODS, PER_POD)
    with _pods(client, ctx, pods_n) as pods:
        cids = []
        for pod in pods:
            for _ in range(per_pod):
                cids.append(_create(client, pod, image))
                _start(client, cids[-1])
        out = {"containers": float(len(cids))}
        out |= _latencies(client, cids, 100 if ctx.quick else 500)
        out |= _pss_mib(client, ctx.pid, cids)
        out |= _tree_memory(client, ctx.pid, cids)
        out |= _polling_cpu(client, ctx, cids, 10.0 if ctx.quick else POLL_SECONDS)
    return out


def _latencies(client: CriClient, cids: list[str], rounds: int) -> dict[str, float]:
    rt = client.runtime
    listed = rt.ListContainers(pb.ListContainersRequest(), timeout=30).containers
    if len(listed) < len(cids):
        raise RuntimeError(f"listed {len(listed)} of {len(cids)} containers")
    version = _median_ms(lambda: rt.Version(pb.VersionRequest(), timeout=30), rounds)
    lists = _median_ms(lambda: rt.ListContainers(pb.ListContainersRequest(), timeout=30), rounds)
    running = pb.ListContainersRequest(filter=pb.ContainerFilter(
        state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING)))
    ps = _median_ms(lambda: rt.ListContainers(running, timeout=30), rounds)
    pods = _median_ms(lambda: rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30), rounds)
    status = _median_ms(lambda: rt.ContainerStatus(pb.ContainerStatusRequest(
        container_id=cids[0]), timeout=30), rounds)
    stats_rounds = max(10, rounds // 10)
    # The first stats call primes whatever a runtime caches; the median is over the rest.
    cstats = _median_ms(lambda: rt.ListContainerStats(pb.ListContainerStatsRequest(),
                                                      timeout=60), stats_rounds)
    pstats = _median_ms(lambda: rt.ListPodSandboxStats(pb.ListPodSandboxStatsRequest(),
                                                       timeout=60), stats_rounds)
    return {"version_median_ms": version, "list_containers_median_ms": lists,
            "list_containers_over_version_ms": lists - version,
            "list_running_over_version_ms": ps - version,
            "list_pods_over_version_ms": pods - version,
            "container_status_median_ms": status,
            "list_container_stats_median_ms": cstats, "list_pod_stats_median_ms": pstats}


# -- CPU of the runtime's process tree ---------------------------------------------------------

def _ticks(pid: int) -> int:
    """utime + stime + cutime + cstime: the process and the children it has reaped."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(f) for f in fields[11:15])


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for task in _tasks(p):
            try:
                kids = Path(f"/proc/{p}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in found:
                    found.add(k)
                    todo.append(k)
    return found


def _tasks(pid: int) -> list[str]:
    try:
        return os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []


def _container_pids(client: CriClient, cids: list[str]) -> set[int]:
    pids = set()
    for cid in cids:
        info = client.runtime.ContainerStatus(pb.ContainerStatusRequest(
            container_id=cid, verbose=True), timeout=30).info
        pid = int(json.loads(info.get("info", "{}")).get("pid", 0))
        if pid:
            pids.add(pid)
    return pids


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def runtime_tree(client: CriClient, daemon_pid: int, cids: list[str]) -> set[int]:
    """The daemon, its descendants, and every container process's parent (monitor or shim)
    with the parent's own descendants, less the container processes themselves."""
    containers = _container_pids(client, cids)
    tree = {daemon_pid} | _descendants(daemon_pid)
    for parent in {_ppid(p) for p in containers} - {0, 1}:
        tree |= {parent} | _descendants(parent)
    return tree - containers - {os.getpid()}


def _rollup(pid: int) -> dict[str, int]:
    """/proc/<pid>/smaps_rollup's kB figures by name ({} for a gone process)."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return {}
    return {f[0].rstrip(":"): int(f[1]) for f in map(str.split, lines)
            if len(f) == 3 and f[2] == "kB"}


def _tree_memory(client: CriClient, daemon_pid: int, cids: list[str]) -> dict[str, float]:
    """PSS of the whole runtime tree (``runtime_tree``: the pod's pid 1 processes, crid's
    holders and containerd's pause, included), and the private dirty memory of the container
    processes' parents: what each monitor/shim costs on its own, whatever it shares."""
    tree = runtime_tree(client, daemon_pid, cids)
    parents = {_ppid(p) for p in _container_pids(client, cids)} - {0, 1, daemon_pid}
    dirty = [_rollup(p).get("Private_Dirty", 0) for p in parents]
    return {"tree_pss_mib": sum(_rollup(p).get("Pss", 0) for p in tree) / 1024,
            "container_parent_private_dirty_mean_kib": statistics.mean(dirty) if dirty
            else float("nan")}


def _polling_cpu(client: CriClient, ctx: BenchContext, cids: list[str],
                 seconds: float) -> dict[str, float]:
    tree = runtime_tree(client, ctx.pid, cids)
    rt = client.runtime
    probe = [pb.ExecSyncRequest(container_id=c, cmd=["/bin/true"], timeout=10) for c in cids]
    before = {p: _ticks(p) for p in tree}
    start = time.monotonic()
    next_relist = next_stats = next_probe = start
    probes = relists = scrapes = 0
    while (now := time.monotonic()) < start + seconds:
        if now >= next_relist:
            rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30)
            rt.ListContainers(pb.ListContainersRequest(), timeout=30)
            relists += 1
            next_relist += 1.0
        if now >= next_stats:
            rt.ListContainerStats(pb.ListContainerStatsRequest(), timeout=60)
            rt.ListPodSandboxStats(pb.ListPodSandboxStatsRequest(), timeout=60)
            scrapes += 1
            next_stats += 10.0
        if now >= next_probe:
            resp = rt.ExecSync(probe[probes % len(probe)], timeout=30)
            if resp.exit_code != 0:
                raise RuntimeError(f"probe exited {resp.exit_code}")
            probes += 1
            next_probe += 1.0 / PROBES_PER_SECOND
        time.sleep(max(0.0, min(next_relist, next_stats, next_probe) - time.monotonic()))
    elapsed = time.monotonic() - start
    used = sum(max(0, _ticks(p) - before[p]) for p in tree) / _TICK  # a gone process: 0
    return {"poll_seconds": elapsed, "poll_cpu_percent": 100 * used / elapsed,
            "poll_probes": float(probes), "poll_relists": float(relists),
            "poll_scrapes": float(scrapes), "poll_tree_processes": float(len(tree))}
