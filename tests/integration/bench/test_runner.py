"""The runner: skips and errors are recorded, not raised; the whole run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import grpc

from tests.bench.api import BenchContext, Benchmark, BenchSkip
from tests.bench.report import RuntimeUnderTest
from tests.bench.runner import main, run_one
from tests.rig.daemon import start_crid
from tests.rig.registry import Registry


class _Unimplemented(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNIMPLEMENTED

    def details(self) -> str:
        return "PullImage is not implemented"


def _ctx(tmp_path: Path, registry: Registry) -> BenchContext:
    return BenchContext("crid", 0, registry, tmp_path / "scratch")


def _raise(exc: Exception) -> dict[str, float]:
    raise exc


def test_outcomes_against_the_real_crid(tmp_path: Path, registry: Registry) -> None:
    daemon = start_crid(tmp_path)
    try:
        rt = RuntimeUnderTest("crid", str(daemon.socket), daemon.proc.pid)
        cases = {
            "unimplemented": lambda c, ctx: _raise(_Unimplemented()),
            "skip": lambda c, ctx: _raise(BenchSkip("needs pods")),
            "broken": lambda c, ctx: _raise(ValueError("bad figure")),
            "version": lambda c, ctx: {"n": float(len(c.version().runtime_name))},
        }
        got = {name: run_one(Benchmark(name, fn, ""), rt, _ctx(tmp_path, registry))
               for name, fn in cases.items()}
    finally:
        daemon.stop()
    assert {n: (o.status, o.reason) for n, o in got.items()} == {
        "unimplemented": ("skipped", "UNIMPLEMENTED: PullImage is not implemented"),
        "skip": ("skipped", "needs pods"),
        "broken": ("error", "ValueError: bad figure"),
        "version": ("ok", None),
    }
    assert got["version"].figures == {"n": 4.0}


def test_runtime_that_did_not_start_is_a_skip(tmp_path: Path, registry: Registry) -> None:
    rt = RuntimeUnderTest("crid", error="boom")
    outcome = run_one(Benchmark("v", lambda c, ctx: {}, ""), rt, _ctx(tmp_path, registry))
    assert (outcome.status, outcome.reason) == ("skipped", "crid did not start: boom")


def test_runner_end_to_end_quick(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    assert main(["--quick", "--only", "cri_roundtrip", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert sorted(report["runtimes"]) == ["containerd", "crid"]
    (bench,) = report["benchmarks"]
    assert bench["status"] == {"containerd": "ok", "crid": "ok"}
    for values in bench["figures"].values():
        assert values["ratio"] == values["crid"] / values["containerd"]
