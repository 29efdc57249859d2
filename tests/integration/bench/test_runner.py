"""The runner against the real crid: UNIMPLEMENTED is a skip with a reason, not a crash."""

from __future__ import annotations

from pathlib import Path

from tests.bench.api import BenchContext, Benchmark, BenchSkip
from tests.bench.report import RuntimeUnderTest
from tests.bench.runner import run_one
from tests.rig.daemon import start_crid
from tests.rig.registry import Registry


def _ctx(tmp_path: Path, registry: Registry) -> BenchContext:
    return BenchContext("crid", 0, registry, tmp_path / "scratch")


def test_unimplemented_and_bench_skip_are_skips(tmp_path: Path, registry: Registry) -> None:
    daemon = start_crid(tmp_path)
    try:
        rt = RuntimeUnderTest("crid", str(daemon.socket), daemon.proc.pid)
        pull = Benchmark("pull", lambda c, ctx: {"t": float(len(c.pull_image("x/y:z")))}, "")
        outcome = run_one(pull, rt, _ctx(tmp_path, registry))
        assert (outcome.status, outcome.figures) == ("skipped", {})
        assert outcome.reason is not None and outcome.reason.startswith("UNIMPLEMENTED")

        def skipper(c: object, ctx: object) -> dict[str, float]:
            raise BenchSkip("needs pods")
        assert run_one(Benchmark("s", skipper, ""), rt, _ctx(tmp_path, registry)).reason == \
            "needs pods"
        version = Benchmark("v", lambda c, ctx: {"n": float(len(c.version().runtime_name))}, "")
        assert run_one(version, rt, _ctx(tmp_path, registry)).figures == {"n": 4.0}
    finally:
        daemon.stop()


def test_runtime_that_did_not_start_is_a_skip(tmp_path: Path, registry: Registry) -> None:
    rt = RuntimeUnderTest("crid", error="boom")
    outcome = run_one(Benchmark("v", lambda c, ctx: {}, ""), rt, _ctx(tmp_path, registry))
    assert (outcome.status, outcome.reason) == ("skipped", "crid did not start: boom")


def test_runner_end_to_end_quick(tmp_path: Path) -> None:
    import json

    from tests.bench.runner import main

    out = tmp_path / "bench.json"
    assert main(["--quick", "--only", "cri_roundtrip", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert sorted(report["runtimes"]) == ["containerd", "crid"]
    (bench,) = report["benchmarks"]
    assert bench["status"] == {"containerd": "ok", "crid": "ok"}
    for values in bench["figures"].values():
        assert values["ratio"] == values["crid"] / values["containerd"]
