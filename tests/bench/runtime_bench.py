"""Runtime benchmark: one busybox ``true`` bundle, medians in milliseconds.

Measures, in one run: the library's create+start+wait (through the zygote, as crid uses it),
the same plus delete, ``crid-runtime run`` (CLI), Debian's ``crun run`` (inside a mount
namespace with /sys/fs/cgroup/unified unmounted: crun 1.8.1 refuses this hybrid host otherwise)
and ``runc run``; and a monitor's PSS from /proc/<pid>/smaps_rollup.

Also ``unshare_sh_overhead`` (what the unshare+sh wrapper alone costs the crun figure). The cases
take turns round by round; state roots are on tmpfs (as /run is on a real host) and the
runtime's bytecode is compiled first (this environment sets PYTHONDONTWRITEBYTECODE).
``RUNTIME_BENCH_ROUNDS`` sets the rounds (default 15).

``run(out)`` fills ``out["runtime"]`` (for the bench runner); ``python -m
tests.bench.runtime_bench`` prints the JSON.
"""

from __future__ import annotations

import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.errors import OCIRuntimeError
from runtime.launch.zygote import Zygote
from runtime.lifecycle import CreateRequest, Runtime
from tests.integration.runtime.bundle import default_config, make_rootfs

REPO = Path(__file__).resolve().parents[2]
ROUNDS = int(os.environ.get("RUNTIME_BENCH_ROUNDS", "15"))
PREFIX = "crt-perf-bench"
PSS_MONITORS = 4  # monitors of one zygote for the mean PSS


@dataclass
class Case:
    """One measured operation: ``once(i)`` runs round ``i`` (-1: warm-up); ``close`` tears down."""

    name: str
    once: Callable[[int], None]
    close: Callable[[], None] = lambda: None


def _interleaved(cases: list[Case], rounds: int = ROUNDS) -> dict[str, float]:
    """Median ms of every case, the cases taking turns in each round so that a load change on
    the machine hits all of them alike."""
    times: dict[str, list[float]] = {c.name: [] for c in cases}
    for case in cases:
        case.once(-1)  # warm-up: page cache, first-use costs
    for i in range(rounds):
        for case in cases:
            t = time.perf_counter()
            case.once(i)
            times[case.name].append(time.perf_counter() - t)
    return {name: round(statistics.median(ts) * 1000, 2) for name, ts in times.items()}


def _bundle(base: Path, args: list[str]) -> Path:
    b = base / ("bundle-" + "-".join(args).replace("/", "_"))
    b.mkdir()
    make_rootfs(str(b / "rootfs"))
    config = default_config(args)
    config["ociVersion"] = "1.0.2"  # crun 1.8.1 rejects "1.2.0" as an unknown version
    (b / "config.json").write_text(json.dumps(config))
    return b


def _quiet(cmd: list[str], **kw: Any) -> None:
    subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True, **kw)


def _library(root: Path, bundle: Path, with_delete: bool) -> Case:
    z = Zygote.start()
    rt = Runtime(root / ("lib-delete" if with_delete else "lib"), z)

    def once(i: int) -> None:
        cid = f"{PREFIX}-lib-{with_delete}-{i}"
        rt.create(CreateRequest(id=cid, bundle=bundle))
        rt.start(cid)
        rt.wait(cid, 30)
        if with_delete:
            rt.delete(cid)

    def close() -> None:
        for cid in rt.store.ids():
            rt.delete(cid, force=True)
        z.close()

    name = "library_create_start_wait" + ("_delete" if with_delete else "")
    return Case(name, once, close)


def _cli(root: Path, bundle: Path, site: bool) -> Case:
    """``crid-runtime run`` as installed: the bin/crid-runtime script (pip only rewrites its
    #! line), not ``-m runtime.cli.client`` (runpy's imports add 6 ms). Its runtime server, started
    by the warm-up round, exits when the state root is removed at the end."""
    flags = [] if site else ["-S"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    root = root / ("cli-site" if site else "cli")
    return Case("cli_run" + ("_with_site" if site else ""), lambda i: _quiet(
        [sys.executable, *flags, str(REPO / "bin" / "crid-runtime"), "--root", str(root), "run",
         "-b", str(bundle), f"{PREFIX}-cli-{site}-{i}"], env=env))


def _crun(root: Path, bundle: Path) -> Case:
    return Case("crun_run_in_unshare", lambda i: _quiet(
        ["unshare", "-m", "sh", "-c",
         "umount /sys/fs/cgroup/unified 2>/dev/null; exec crun --root \"$0\" run -b \"$1\" \"$2\"",
         str(root / "crun"), str(bundle), f"{PREFIX}-crun-{i}"]))


def _unshare_overhead() -> Case:
    return Case("unshare_sh_overhead", lambda i: _quiet(
        ["unshare", "-m", "sh", "-c", "umount /sys/fs/cgroup/unified 2>/dev/null; exec true"]))


def _runc(root: Path, bundle: Path) -> Case:
    return Case("runc_run", lambda i: _quiet(
        ["runc", "--root", str(root / "runc"), "run", "-b", str(bundle), f"{PREFIX}-runc-{i}"]))


def _monitor_pss(base: Path, bundle: Path, extra: int = PSS_MONITORS - 1) -> dict[str, int]:
    """PSS of one monitor (alone with its zygote), then the mean over 1 + ``extra`` monitors
    of one zygote: the zygote's heap they share is charged to each in equal parts."""
    z = Zygote.start()
    rt = Runtime(base / "pss", z)
    cids = [f"{PREFIX}-pss{i}" for i in range(1 + extra)]
    try:
        res: dict[str, int] = {}
        monitors = []
        for i, cid in enumerate(cids):
            created = rt.create(CreateRequest(id=cid, bundle=bundle, log_path=base / f"{cid}.log"))
            rt.start(cid)
            monitors.append(created.monitor_pid)
            if i == 0:
                time.sleep(0.5)
                res = {"monitor_pss_kib": _pss(created.monitor_pid), "zygote_pss_kib": _pss(z.pid),
                       # without file pages, whose share depends on what else runs python
                       "monitor_pss_anon_kib": _pss(created.monitor_pid, "Pss_Anon:")}
        time.sleep(0.5)
        res[f"monitor_pss_kib_mean_of_{len(cids)}"] = round(
            statistics.mean(_pss(m) for m in monitors))
        return res
    finally:
        for cid in cids:
            try:
                rt.delete(cid, force=True)
            except OCIRuntimeError:
                pass
        z.close()


def _pss(pid: int, field: str = "Pss:") -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return -1


def run(out: dict[str, Any]) -> dict[str, Any]:
    """Run every measurement; put the results under ``out["runtime"]`` and return them."""
    # An installed package has its bytecode compiled; a work tree under
    # PYTHONDONTWRITEBYTECODE would otherwise recompile every module on each CLI start.
    compileall.compile_dir(str(REPO / "runtime"), quiet=1)
    base = Path(tempfile.mkdtemp(prefix=PREFIX + "-"))
    # State roots on tmpfs, as /run is on a real host (here /run is on disk), for every runtime.
    state = Path(tempfile.mkdtemp(prefix=PREFIX + "-", dir="/dev/shm"))
    try:
        true_bundle = _bundle(base, ["/bin/true"])
        sleep_bundle = _bundle(base, ["sleep", "60"])
        res: dict[str, Any] = {"rounds": ROUNDS, "unit": "ms (median)",
                               "load_average_before": os.getloadavg()[0]}
        cases = [_library(state, true_bundle, False), _library(state, true_bundle, True),
                 _cli(state, true_bundle, site=False),
                 _cli(state, true_bundle, site=True), _unshare_overhead()]
        cases += [_crun(state, true_bundle)] if shutil.which("crun") else []
        cases += [_runc(state, true_bundle)] if shutil.which("runc") else []
        try:
            res.update(_interleaved(cases))
        finally:
            for case in cases:
                case.close()
        res.update(_monitor_pss(state, sleep_bundle))
        res["load_average_after"] = os.getloadavg()[0]
    finally:
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
    out["runtime"] = res
    return res


def main() -> None:
    print(json.dumps(run({}), indent=2))


if __name__ == "__main__":
    main()
