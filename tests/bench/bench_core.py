"""The foundation's benchmarks: CRI round-trip latency and the cold pull of a big image."""

from __future__ import annotations

import time

from tests.bench.api import BenchContext, benchmark, latency_figures
from tests.rig import catalog
from tests.rig.cri_client import CriClient
from tests.rig.distribution import DistributionClient
from tests.rig.images import push

BIG_REPO = "crt-rig/big"


@benchmark("cri_roundtrip")
def cri_roundtrip(client: CriClient, ctx: BenchContext) -> dict[str, float]:
    """Version and ImageFsInfo latency (median, p95) over N sequential calls."""
    calls = 50 if ctx.quick else 500
    figures: dict[str, float] = {}
    for name, call in (("version", client.version), ("image_fs_info", client.image_fs_info)):
        for _ in range(10):  # warm the channel and any caches
            call()
        durations = []
        for _ in range(calls):
            start = time.perf_counter()
            call()
            durations.append(time.perf_counter() - start)
        figures |= latency_figures(name, durations)
    return figures


def pushed_big_image(ctx: BenchContext, variant: int = 0) -> str:
    """Build and push the ~200 MB / 8-layer image once per run; returns its reference."""
    def build_and_push() -> str:
        total = 16 * catalog.MiB if ctx.quick else 200 * catalog.MiB
        image = catalog.big_image(total_bytes=total, variant=variant)
        tag = f"v{variant}"
        push(DistributionClient(ctx.registry), BIG_REPO, image, tag=tag)
        return ctx.registry.ref(BIG_REPO, tag)
    return ctx.once(f"big-image-{variant}", build_and_push)


@benchmark("cold_pull_big")
def cold_pull_big(client: CriClient, ctx: BenchContext) -> dict[str, float]:
    """PullImage of the big image (8 layers, ~200 MB) that the runtime has never seen."""
    ref = pushed_big_image(ctx)
    start = time.perf_counter()
    client.pull_image(ref, timeout=600)
    elapsed = time.perf_counter() - start
    if client.image_status(ref) is None:
        raise RuntimeError(f"{ctx.runtime} reported pulling {ref} but does not list it")
    return {"pull_s": elapsed, "peak_rss_mib": ctx.peak_rss_mib()}
