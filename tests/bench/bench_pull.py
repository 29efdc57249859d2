"""CRI-level pull benchmarks beyond the cold pull (registered with the bench runner)."""

from __future__ import annotations

import time

from tests.bench.api import BenchContext, benchmark
from tests.bench.bench_core import pushed_big_image
from tests.rig.cri_client import CriClient


@benchmark("pull_shared_7_of_8")
def pull_shared_7_of_8(client: CriClient, ctx: BenchContext) -> dict[str, float]:
    """PullImage of an image sharing 7 of its 8 layers with the big image already pulled."""
    first, second = pushed_big_image(ctx, 0), pushed_big_image(ctx, 1)
    if client.image_status(first.ref) is None:
        client.pull_image(first.ref, timeout=600)
    start = time.perf_counter()
    client.pull_image(second.ref, timeout=600)
    seconds = time.perf_counter() - start
    return {"pull_s": seconds, "peak_rss_mib": ctx.peak_rss_mib()}
