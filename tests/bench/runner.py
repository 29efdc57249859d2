"""`make bench`: every registered benchmark against containerd 1.6 and crid, in one run.

    python -m tests.bench.runner [--quick] [--only NAME]... [--out bench-results/bench.json]

Starts a rig registry (plain HTTP on loopback) with the pause image, containerd with a config of
its own (`tests.bench.containerd`) and crid in a temporary root, imports every
`tests/bench/bench_*.py` (their `@benchmark`s register themselves), runs each benchmark on
containerd then crid through the same `CriClient`, writes JSON (each figure for both runtimes
and the ratio crid/containerd) and prints a table. A runtime that fails to start, a benchmark
that raises `BenchSkip` or gets UNIMPLEMENTED, is recorded as skipped with the reason; any other
failure is recorded as an error; neither stops the run. Everything started is stopped by PID
and every temp dir (containerd's mounts included) is removed, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import json
import os
import pkgutil
import platform
import shutil
import signal
import sys
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path

import grpc

import tests.bench
from tests.bench.api import REGISTRY, BenchContext, Benchmark, BenchSkip
from tests.bench.cgroups import CGROUP_PARENT, remove_cgroup_dirs
from tests.bench.containerd import ContainerdOptions, running_containerd
from tests.bench.report import Outcome, RuntimeUnderTest, render_table, summarise
from tests.rig import catalog
from tests.rig.cri_client import CriClient
from tests.rig.daemon import start_crid, test_network_config
from tests.rig.distribution import DistributionClient
from tests.rig.images import push
from tests.rig.registry import Registry, running_registry

RUNTIMES = ("containerd", "crid")
PAUSE_REPO = "crt-rig/pause"
PAUSE_TAG = "3.10"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if os.geteuid() != 0:
        print("bench: must run as root (containerd and crid need it)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)  # so ExitStack cleanup runs
    load_benchmarks()
    selected = [b for b in REGISTRY if not args.only or b.name in args.only]
    with contextlib.ExitStack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="crt-rig-bench-"))
        workdir.chmod(0o711)  # user-namespaced containers walk down to their rootfs
        stack.callback(_rmtree, workdir)
        stack.callback(remove_cgroup_dirs)
        registry = stack.enter_context(running_registry())
        pause_ref = _push_pause(registry)
        runtimes = [stack.enter_context(_start(name, workdir, registry, pause_ref))
                    for name in args.runtimes]
        results = run_benchmarks(selected, runtimes, registry, workdir, args.quick)
    report = summarise(results, runtimes, args.quick, _host())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(render_table(report))
    print(f"\nwritten: {args.out}")
    return 0


def load_benchmarks() -> None:
    """Import every `tests/bench/bench_*.py`; each registers its benchmarks on import."""
    for module in pkgutil.iter_modules(tests.bench.__path__):
        if module.name.startswith("bench_"):
            importlib.import_module(f"tests.bench.{module.name}")


def run_benchmarks(
    selected: list[Benchmark], runtimes: list[RuntimeUnderTest], registry: Registry,
    workdir: Path, quick: bool,
) -> dict[str, dict[str, Outcome]]:
    """name → runtime → outcome, running each benchmark on every runtime in turn."""
    shared: dict[str, object] = {}
    results: dict[str, dict[str, Outcome]] = {}
    for bench in selected:
        results[bench.name] = {}
        for rt in runtimes:
            print(f"bench: {bench.name} on {rt.name} ...", file=sys.stderr, flush=True)
            ctx = BenchContext(rt.name, rt.pid or 0, registry, workdir / "scratch" / rt.name,
                               quick, shared)
            results[bench.name][rt.name] = run_one(bench, rt, ctx)
    return results


def run_one(bench: Benchmark, rt: RuntimeUnderTest, ctx: BenchContext) -> Outcome:
    if rt.error is not None or rt.socket is None:
        return Outcome("skipped", {}, f"{rt.name} did not start: {rt.error}")
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    try:
        with CriClient(rt.socket) as client:
            return Outcome("ok", bench.fn(client, ctx))
    except BenchSkip as skip:
        return Outcome("skipped", {}, str(skip))
    except grpc.RpcError as err:
        code, details = err.code(), err.details()  # type: ignore[attr-defined]
        status = "skipped" if code == grpc.StatusCode.UNIMPLEMENTED else "error"
        return Outcome(status, {}, f"{code.name}: {details}")
    except Exception as err:  # noqa: BLE001 - one broken benchmark must not end the run
        traceback.print_exc()
        return Outcome("error", {}, f"{type(err).__name__}: {err}")


@contextlib.contextmanager
def _start(name: str, workdir: Path, registry: Registry,
           pause_ref: str) -> Iterator[RuntimeUnderTest]:
    """Start runtime `name`; yields it (with `error` set if it could not start) and stops it."""
    with contextlib.ExitStack() as stack:
        try:
            runtime = _launch(name, workdir, registry, pause_ref, stack)
        except Exception as err:  # noqa: BLE001 - recorded; the other runtime still runs
            runtime = RuntimeUnderTest(name, error=f"{type(err).__name__}: {str(err)[:2000]}")
        yield runtime


def _launch(name: str, workdir: Path, registry: Registry, pause_ref: str,
            stack: contextlib.ExitStack) -> RuntimeUnderTest:
    if name == "containerd":
        options = ContainerdOptions(sandbox_image=pause_ref,
                                    plain_http_registries=(registry.netloc,))
        ctd = stack.enter_context(running_containerd(workdir / "containerd", options))
        return _describe(name, str(ctd.socket), ctd.pid)
    if name == "crid":
        base = workdir / "crid"
        base.mkdir(parents=True, exist_ok=True)
        cfg, bridge = test_network_config(base)
        # Docker-side pods (the docker_* benchmarks) under the bench's cgroup parent, as
        # dockerd's containers are, so the run's cleanup removes their cgroups too: the pods'
        # default parent (/crid) would outlive the run.
        with cfg.open("a") as f:
            f.write(f'[docker]\ncgroup_parent = "{CGROUP_PARENT}"\n')
        daemon = start_crid(base, config=cfg)
        daemon.bridge = bridge  # removed by stop(), as start_crid's own test network is
        stack.callback(daemon.stop)
        return _describe(name, str(daemon.socket), daemon.proc.pid)
    raise ValueError(f"unknown runtime {name!r} (want containerd or crid)")


def _describe(name: str, socket: str, pid: int) -> RuntimeUnderTest:
    with CriClient(socket) as client:
        v = client.version()
    return RuntimeUnderTest(name, socket, pid, f"{v.runtime_name} {v.runtime_version}")


def _push_pause(registry: Registry) -> str:
    push(DistributionClient(registry), PAUSE_REPO, catalog.pause_image(), tag=PAUSE_TAG)
    return registry.ref(PAUSE_REPO, PAUSE_TAG)


def _host() -> dict[str, object]:
    return {
        "kernel": platform.release(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.runner", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench-results/bench.json"))
    parser.add_argument("--quick", action="store_true",
                        help="small images and few iterations (a smoke test of the harness)")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this benchmark (repeatable)")
    parser.add_argument("--runtimes", type=lambda s: tuple(s.split(",")), default=RUNTIMES,
                        help="comma-separated subset of containerd,crid")
    return parser.parse_args(argv)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
