"""Where RunPodSandbox's time goes, server side, with N concurrent calls (no gRPC).

    python -m tests.bench.profile_pods [--parallel 10] [--runs 30]

Builds a PodManager the way the daemon does (built-in network on a bridge ``crtn<hex>`` and
10.218.0.0/16, a temporary root, cgroup parent ``/crt-np-prof``), wraps each dependency in a
timing proxy (composition: the code under test is unchanged), runs ``runs`` RunPodSandbox
``parallel`` at a time, then Stop+Remove as concurrently, and prints per-step mean/median/max
and the CPU the daemon process spent per pod (user and system). Removes everything it made.
"""

from __future__ import annotations

import argparse
import collections
import os
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from crid.api import api_pb2 as pb
from crid.network import NetworkOptions, make_pod_network
from crid.pods import PodManager, PodOptions, SetupDeps, handler_set
from crid.pods.cgroups import RuntimePodCgroups
from crid.pods.namespaces import NamespacePinner
from crid.server.pod_convert import spec_from_pb
from crid.store import MetadataStore
from tests.bench.cgroups import remove_cgroup_dirs

CGROUP_PARENT = "/crt-np-prof"


class Timings:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.samples: dict[str, list[float]] = collections.defaultdict(list)

    def add(self, name: str, seconds: float) -> None:
        with self._lock:
            self.samples[name].append(seconds)

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.add(name, time.perf_counter() - start)
        return call

    def table(self) -> str:
        rows = []
        for name in sorted(self.samples):
            ms = [s * 1000 for s in self.samples[name]]
            rows.append(f"{name:28s} n={len(ms):3d} mean={statistics.mean(ms):7.1f} "
                        f"median={statistics.median(ms):7.1f} max={max(ms):7.1f} ms")
        return "\n".join(rows)


class TimedProxy:
    """Every method call on ``target`` is timed as ``<label>.<method>``."""

    def __init__(self, target: Any, label: str, timings: Timings) -> None:
        self._target, self._label, self._timings = target, label, timings

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        return self._timings.timed(f"{self._label}.{name}", value) if callable(value) else value


def pod_spec(tag: str, i: int) -> Any:
    name = f"crt-np-prof-{tag}-{i}"
    return spec_from_pb(pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{tag}-{i}", namespace="crt-np"),
        hostname=name, linux=pb.LinuxPodSandboxConfig(cgroup_parent=CGROUP_PARENT))))


def profile(parallel: int, runs: int) -> str:
    base = Path(tempfile.mkdtemp(prefix="crt-np-prof-"))
    bridge = "crtn" + secrets.token_hex(3)
    net = make_pod_network(NetworkOptions(
        mode="builtin", bridge=bridge, pod_cidr="10.218.0.0/16", state_dir=str(base / "net"),
        nft_table=f"crt_np_{bridge}"))
    t = Timings()
    deps = SetupDeps(
        pinner=TimedProxy(NamespacePinner(), "pin", t),  # type: ignore[arg-type]
        network=TimedProxy(net, "net", t),  # type: ignore[arg-type]
        cgroups=TimedProxy(RuntimePodCgroups(), "cgroup", t),  # type: ignore[arg-type]
        run_root=base / "run", shm_size=64 << 20)
    store = TimedProxy(MetadataStore(base / "metadata.db"), "store", t)
    pods = PodManager(PodOptions(run_root=base / "run", handlers=handler_set("crid")),
                      store, deps)  # type: ignore[arg-type]
    tag = secrets.token_hex(3)
    try:
        warm = pods.run(pod_spec(tag, -1)).value
        pods.remove(warm)
        t.samples.clear()
        cpu0, wall0 = os.times(), time.perf_counter()
        with ThreadPoolExecutor(parallel) as pool:
            ids = list(pool.map(t.timed("RunPodSandbox", lambda i: pods.run(pod_spec(tag, i))),
                                range(runs)))
            cpu1, wall1 = os.times(), time.perf_counter()
            list(pool.map(t.timed("Stop+Remove", lambda p: (pods.stop(p.value),
                                                             pods.remove(p.value))), ids))
        head = (f"{runs} RunPodSandbox, {parallel} at a time: {wall1 - wall0:.3f}s wall; daemon "
                f"CPU per pod: user {(cpu1.user - cpu0.user) / runs * 1000:.1f} ms, "
                f"system {(cpu1.system - cpu0.system) / runs * 1000:.1f} ms")
        return head + "\n" + t.table()
    finally:
        net.remove_network()  # type: ignore[attr-defined]
        remove_cgroup_dirs(CGROUP_PARENT)
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, default=10)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    print(profile(args.parallel, args.runs))


if __name__ == "__main__":
    main()
