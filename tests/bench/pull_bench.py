"""Image pull benchmarks of the image store library (JSON out; not a timed test).

    python3 -m tests.bench.pull_bench [--quick] [--out FILE]

Figures:
- `unpack_mb_per_s` vs `zcat_tar_mb_per_s`: uncompressed MB/s of crid's one-pass
  hash+decompress+extract of the big image's gzip layers, against `zcat | tar -x` of the same
  blobs, both pinned to one CPU;
- `cold_pull_s`, `cold_pull_cpu_s`, `cold_pull_peak_rss_mib`: a cold pull of the big image
  (8 layers, ~200 MB) from a rig registry on loopback, in a fresh interpreter (its VmHWM is
  the peak RSS);
- `second_pull_s`, `second_pull_cpu_s`: then an image sharing 7 of the 8 layers.
The CRI-level comparison with containerd is `bench_pull.py` (run by `tests.bench.runner`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from imagestore.decompress import BombLimits
from imagestore.digest import Digest
from imagestore.unpack import unpack_layer
from tests.rig import catalog
from tests.rig.distribution import DistributionClient
from tests.rig.images import BuiltImage, push
from tests.rig.registry import Registry, RegistryOptions, running_registry

REPO = "crt-bench/big"
LIMITS = BombLimits(1 << 40, 1000, 1 << 30)


def big_images(quick: bool) -> tuple[BuiltImage, BuiltImage]:
    """The big image and a variant that shares all its layers but the top one."""
    total = 16 * catalog.MiB if quick else 200 * catalog.MiB
    return (catalog.big_image(total_bytes=total, variant=0),
            catalog.big_image(total_bytes=total, variant=1))


@contextmanager
def one_cpu() -> Iterator[int]:
    """Pin this process to one CPU for the block; yields the CPU number."""
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        os.sched_setaffinity(0, before)


def unpack_speed(image: BuiltImage, workdir: Path) -> dict[str, float]:
    """Uncompressed MB/s of crid's unpack and of `zcat | tar -x`, one CPU each."""
    raw = sum(len(e.data) for la in image.layers for e in la.entries)
    with one_cpu() as cpu:
        crid_s = _timed_layers(image, workdir / "crid", lambda la, dest: unpack_layer(
            [la.data[i:i + (256 << 10)] for i in range(0, len(la.data), 256 << 10)],
            la.compression, dest, Digest.parse(la.diff_id), LIMITS))
    tar_s = _timed_layers(image, workdir / "tar", lambda la, dest: subprocess.run(
        ["taskset", "-c", str(cpu), "sh", "-c", f"zcat | tar -x -C {dest}"],
        input=la.data, check=True))
    return {"unpack_mb_per_s": raw / 1e6 / crid_s, "zcat_tar_mb_per_s": raw / 1e6 / tar_s,
            "unpack_vs_zcat_tar": tar_s / crid_s}


def _timed_layers(image: BuiltImage, root: Path, fn: object) -> float:
    total = 0.0
    for i, layer in enumerate(image.layers):
        dest = root / str(i)
        dest.mkdir(parents=True)
        start = time.perf_counter()
        fn(layer, dest)  # type: ignore[operator]
        total += time.perf_counter() - start
    shutil.rmtree(root)
    return total


_CHILD = """
import json, sys, time
from pathlib import Path
from imagestore import ImageStore, ImageStoreOptions
root, refs = Path(sys.argv[1]), sys.argv[2:]
store = ImageStore(ImageStoreOptions(root=root, auth_file=None, certs_dir=root / "certs"))
out = []
for ref in refs:
    start, cpu = time.perf_counter(), time.process_time()
    store.pull(ref)
    out.append(time.perf_counter() - start)
    out.append(time.process_time() - cpu)
    hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:")][0].split()[1]
    out.append(int(hwm) / 1024)
store.close()
print(json.dumps(out))
"""


def pull_times(registry: Registry, refs: list[str], root: Path) -> list[float]:
    """Pull `refs` in order in a fresh interpreter: [seconds, CPU seconds, peak RSS MiB] per
    ref (CPU time says more than wall time on a busy machine)."""
    here = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", _CHILD, str(root), *refs], check=True,
                         capture_output=True, text=True, cwd=here,
                         env={**os.environ, "PYTHONPATH": str(here)})
    return json.loads(out.stdout)


def run(quick: bool = False) -> dict[str, float]:
    """Every figure of this module (starts and stops its own registry)."""
    first, second = big_images(quick)
    with tempfile.TemporaryDirectory(prefix="crt-img-bench-") as tmp, \
            running_registry(RegistryOptions()) as registry:
        work = Path(tmp)
        client = DistributionClient(registry)
        push(client, REPO, first, "v0")
        push(client, REPO, second, "v1")
        figures = unpack_speed(first, work)
        cold, cold_cpu, rss, shared, shared_cpu, _ = pull_times(
            registry, [registry.ref(REPO, "v0"), registry.ref(REPO, "v1")], work / "store")
        figures |= {"cold_pull_s": cold, "cold_pull_cpu_s": cold_cpu,
                    "cold_pull_peak_rss_mib": rss, "second_pull_s": shared,
                    "second_pull_cpu_s": shared_cpu,
                    "compressed_mb": sum(la.size for la in first.layers) / 1e6,
                    "cold_pull_mb_per_s": sum(la.size for la in first.layers) / 1e6 / cold}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 MB instead of 200 MB")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    result = json.dumps(run(args.quick), indent=2, sort_keys=True)
    print(result)
    if args.out:
        args.out.write_text(result + "\n")


if __name__ == "__main__":
    main()
