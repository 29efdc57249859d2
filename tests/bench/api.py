"""How benchmarks register and what they get.

A benchmark is a function `bench(client, ctx) -> dict[str, float]` registered with
`@benchmark("name")`. The runner calls it once per runtime (containerd first, then crid) with a
`CriClient` bound to that runtime and a `BenchContext`. Figures are named with their unit
(`pull_s`, `version_median_ms`, `peak_rss_mib`). A benchmark that cannot run on a runtime raises
`BenchSkip(reason)`; a gRPC UNIMPLEMENTED answer is recorded as a skip too.

Shared set-up (building and pushing images) goes through `ctx.once(key, fn)`, which runs `fn`
once per bench run and caches its result for every benchmark and runtime.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.rig.cri_client import CriClient
from tests.rig.registry import Registry

BenchFn = Callable[[CriClient, "BenchContext"], dict[str, float]]


class BenchSkip(Exception):
    """This benchmark cannot run on this runtime; the message says why."""


@dataclass(frozen=True)
class Benchmark:
    name: str
    fn: BenchFn
    doc: str


REGISTRY: list[Benchmark] = []


def benchmark(name: str) -> Callable[[BenchFn], BenchFn]:
    """Register `fn` under `name` (names are unique; order of registration is run order)."""
    def register(fn: BenchFn) -> BenchFn:
        if any(b.name == name for b in REGISTRY):
            raise ValueError(f"benchmark {name!r} registered twice")
        summary = (fn.__doc__ or "").strip().split("\n")[0]
        REGISTRY.append(Benchmark(name, fn, summary))
        return fn
    return register


@dataclass
class BenchContext:
    """What a benchmark may use: the runtime's name and PID, the rig registry the runtimes
    can pull from over plain HTTP, a scratch dir, and the shared set-up cache."""

    runtime: str
    pid: int
    registry: Registry
    workdir: Path
    quick: bool = False
    _shared: dict[str, Any] = field(default_factory=dict)

    def once(self, key: str, fn: Callable[[], Any]) -> Any:
        """`fn()` the first time `key` is asked for in this run; the cached value after."""
        if key not in self._shared:
            self._shared[key] = fn()
        return self._shared[key]

    def peak_rss_mib(self) -> float:
        """The runtime process's peak resident set (VmHWM) so far, in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")


def latency_figures(prefix: str, seconds: list[float]) -> dict[str, float]:
    """`<prefix>_median_ms` and `<prefix>_p95_ms` of a list of durations in seconds."""
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    median = statistics.median(ordered)
    return {f"{prefix}_median_ms": median * 1000, f"{prefix}_p95_ms": p95 * 1000}
