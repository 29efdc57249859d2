"""Pod sandbox benchmarks: RunPodSandbox latency (sequential and 10 concurrent) and
StopPodSandbox+RemovePodSandbox, through the same CriClient for containerd and crid.

    python -m tests.bench.bench_pods      # crid alone, in a temp root with a test bridge

Figures: run_seq_{median,p95}_ms, run_conc10_{median,p95}_ms, stop_remove_{median,p95}_ms.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from crid.api import api_pb2 as pb
from tests.bench.api import BenchContext, benchmark, latency_figures
from tests.bench.cgroups import CGROUP_PARENT, remove_cgroup_dirs
from tests.rig.cri_client import CriClient

RUNS = 30
PARALLEL = 10


def pod_config(tag: str, i: int) -> pb.PodSandboxConfig:
    name = f"crt-pod-bench-{tag}-{i}"
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{tag}-{i}", namespace="crt-bench"),
        hostname=name[:63], labels={"bench": tag},
        linux=pb.LinuxPodSandboxConfig(cgroup_parent=CGROUP_PARENT))


def _timed_run(client: CriClient, cfg: pb.PodSandboxConfig) -> tuple[str, float]:
    start = time.perf_counter()
    resp = client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=120)
    return resp.pod_sandbox_id, time.perf_counter() - start


def _timed_stop_remove(client: CriClient, pod_id: str) -> float:
    start = time.perf_counter()
    client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)
    client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id),
                                    timeout=120)
    return time.perf_counter() - start


def run_sequential(client: CriClient, runs: int = RUNS) -> dict[str, list[float]]:
    """`runs` RunPodSandbox one after another, then Stop+Remove each; durations in seconds."""
    tag = secrets.token_hex(3)
    made = [_timed_run(client, pod_config(tag, i)) for i in range(runs)]
    return {"run": [t for _, t in made],
            "stop_remove": [_timed_stop_remove(client, pid) for pid, _ in made]}


def run_concurrent(client: CriClient, runs: int = RUNS,
                   parallel: int = PARALLEL) -> dict[str, list[float]]:
    """`runs` RunPodSandbox, `parallel` at a time, then Stop+Remove as concurrently."""
    tag = secrets.token_hex(3)
    with ThreadPoolExecutor(parallel) as pool:
        made = list(pool.map(lambda i: _timed_run(client, pod_config(tag, i)), range(runs)))
        removed = list(pool.map(lambda m: _timed_stop_remove(client, m[0]), made))
    return {"run": [t for _, t in made], "stop_remove": removed}


def pod_figures(client: CriClient, runs: int = RUNS) -> dict[str, float]:
    _timed_stop_remove(client, _timed_run(client, pod_config("warm", 0))[0])  # warm-up
    seq = run_sequential(client, runs)
    conc = run_concurrent(client, runs)
    return (latency_figures("run_seq", seq["run"])
            | latency_figures("run_conc10", conc["run"])
            | latency_figures("stop_remove", seq["stop_remove"])
            | latency_figures("stop_remove_conc10", conc["stop_remove"]))


@benchmark("pod_sandbox")
def pod_sandbox(client: CriClient, ctx: BenchContext) -> dict[str, float]:
    """RunPodSandbox median/p95 (30 runs, sequential and 10 concurrent); Stop+Remove."""
    return pod_figures(client, 10 if ctx.quick else RUNS)


def _main() -> int:
    from tests.rig.daemon import start_crid

    base = Path(tempfile.mkdtemp(prefix="crt-pod-bench-"))
    bridge = f"crtp{secrets.token_hex(3)}"
    cfg = base / "crid.toml"
    cfg.write_text(f'[network]\nmode = "builtin"\nbridge = "{bridge}"\n'
                   f'pod_cidr = "10.213.0.0/16"\ncni_conf_dir = "{base}/cni"\n')
    daemon = start_crid(base, config=cfg)
    try:
        with CriClient(daemon.socket) as client:
            print(json.dumps(pod_figures(client), indent=2))
    finally:
        daemon.stop()
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        subprocess.run(["nft", "delete", "table", "inet", f"crid_{bridge}"], capture_output=True)
        subprocess.run(["rm", "-rf", str(base)])
        remove_cgroup_dirs()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
