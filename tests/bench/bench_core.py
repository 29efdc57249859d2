"""The foundation's benchmarks: CRI round-trip latency and the cold pull of a big image."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import grpc

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


@dataclass(frozen=True)
class PushedImage:
    """An image pushed to the bench registry: its reference and sizes in bytes."""

    ref: str
    image_id: str
    compressed_bytes: int
    uncompressed_bytes: int


def pushed_big_image(ctx: BenchContext, variant: int = 0) -> PushedImage:
    """Build and push the ~200 MB / 8-layer image once per run (16 MB with --quick).
    Variants of the same run share all layers but the last."""
    def build_and_push() -> PushedImage:
        total = 16 * catalog.MiB if ctx.quick else 200 * catalog.MiB
        image = catalog.big_image(total_bytes=total, variant=variant)
        tag = f"v{variant}"
        push(DistributionClient(ctx.registry), BIG_REPO, image, tag=tag)
        return PushedImage(
            ctx.registry.ref(BIG_REPO, tag), image.image_id,
            sum(layer.size for layer in image.layers),
            sum(len(e.data) for layer in image.layers for e in layer.entries),
        )
    return ctx.once(f"big-image-{variant}", build_and_push)


@benchmark("cold_pull_big")
def cold_pull_big(client: CriClient, ctx: BenchContext) -> dict[str, float]:
    """PullImage of the big image (8 layers, ~200 MB) that the runtime does not have.

    Repeated (3 rounds, 1 with --quick) with RemoveImage in between; a runtime that cannot
    remove images yet gets one round."""
    image = pushed_big_image(ctx)
    rounds = 1 if ctx.quick else 3
    times: list[float] = []
    for round_no in range(rounds):
        start = time.perf_counter()
        client.pull_image(image.ref, timeout=600)
        times.append(time.perf_counter() - start)
        if client.image_status(image.ref) is None:
            raise RuntimeError(f"{ctx.runtime} reported pulling {image.ref} but does not list it")
        if round_no + 1 < rounds and not _removed(client, image):
            break
    median = statistics.median(times)
    return {
        "pull_s": median,
        "pull_min_s": min(times),
        "pull_rounds": float(len(times)),
        "compressed_mb_per_s": image.compressed_bytes / 1e6 / median,
        "peak_rss_mib": ctx.peak_rss_mib(),
    }


def _removed(client: CriClient, image: PushedImage) -> bool:
    """Remove the image so the next pull is cold; False if the runtime cannot."""
    try:
        client.remove_image(image.image_id)
    except grpc.RpcError:
        return False
    return client.image_status(image.ref) is None
