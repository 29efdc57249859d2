"""The embedded OCI runtime beside runc and crun (issue 3), in the same `make bench` run.

Not a CRI benchmark: `tests.bench.runtime_bench` runs one busybox `true` bundle through crid's
runtime library, its `crid-runtime run`, `runc run` and `crun run`, round by round, once per
bench run (the first turn measures, both turns report). The containerd column holds the
reference engines, the crid column crid's runtime, under common names so the ratio is the
issue's target:

- `oci_run_ms`: `crid-runtime run` vs `runc run` (containerd's runtime). Target ≤ 1.
- `oci_create_start_wait_ms`: the library's create+start+wait (as crid calls it) vs `crun run`
  without the `unshare -m sh` wrapper crun 1.8.1 needs on this hybrid-cgroup host
  (`crun_in_unshare_ms` - `unshare_sh_ms`, both shown). Target ≤ 1.
- `monitor_pss_kib`: a container monitor's PSS (crid only; target ≤ 1024).
"""

from __future__ import annotations

from typing import Any

from tests.bench import runtime_bench
from tests.bench.api import BenchContext, BenchSkip, benchmark
from tests.rig.cri_client import CriClient


@benchmark("oci_runtime")
def oci_runtime(client: CriClient, ctx: BenchContext) -> dict[str, float]:
    """crid's OCI runtime (library, CLI, monitor) beside runc and crun (issue 3)."""
    res: dict[str, Any] = ctx.once("runtime_bench", lambda: runtime_bench.run({}))
    if ctx.runtime == "containerd":
        if "runc_run" not in res or "crun_run_in_unshare" not in res:
            raise BenchSkip("runc or crun is not installed")
        return {"oci_run_ms": res["runc_run"],
                "oci_create_start_wait_ms": res["crun_run_in_unshare"]
                - res["unshare_sh_overhead"],
                "crun_in_unshare_ms": res["crun_run_in_unshare"],
                "unshare_sh_ms": res["unshare_sh_overhead"]}
    return {"oci_run_ms": res["cli_run"],
            "oci_create_start_wait_ms": res["library_create_start_wait"],
            "monitor_pss_kib": res["monitor_pss_kib"],
            f"monitor_pss_kib_mean_of_{runtime_bench.PSS_MONITORS}":
                res[f"monitor_pss_kib_mean_of_{runtime_bench.PSS_MONITORS}"]}
