"""Bench results: JSON summary with ratios, table rendering, registration."""

from __future__ import annotations

import pytest

from tests.bench import api
from tests.bench.report import Outcome, RuntimeUnderTest, render_table, summarise


def _report() -> dict[str, object]:
    results = {
        "lat": {"containerd": Outcome("ok", {"x_ms": 2.0}), "crid": Outcome("ok", {"x_ms": 1.0})},
        "pull": {"containerd": Outcome("ok", {"pull_s": 4.0}),
                 "crid": Outcome("skipped", {}, "UNIMPLEMENTED: PullImage")},
    }
    runtimes = [RuntimeUnderTest("containerd", "/s1", 1, "containerd 1.6"),
                RuntimeUnderTest("crid", "/s2", 2, "crid 0.1.0")]
    return summarise(results, runtimes, quick=True, host={})


def test_summary_has_both_runtimes_and_ratio() -> None:
    benches = {b["name"]: b for b in _report()["benchmarks"]}  # type: ignore[index]
    assert benches["lat"]["figures"] == {"x_ms": {"containerd": 2.0, "crid": 1.0, "ratio": 0.5}}
    assert benches["pull"]["figures"] == {
        "pull_s": {"containerd": 4.0, "crid": None, "ratio": None}}
    assert benches["pull"]["status"] == {"containerd": "ok", "crid": "skipped"}
    assert benches["pull"]["reasons"] == {"crid": "UNIMPLEMENTED: PullImage"}


def test_table_shows_values_skips_and_reasons() -> None:
    table = render_table(_report()).splitlines()
    assert table[0].split() == ["benchmark", "figure", "containerd", "crid", "crid/containerd"]
    assert table[2].split() == ["lat", "x_ms", "2", "1", "0.5"]
    assert table[3].split() == ["pull", "pull_s", "4", "skipped", "-"]
    assert table[-1] == "pull on crid: skipped: UNIMPLEMENTED: PullImage"


def test_latency_figures() -> None:
    figures = api.latency_figures("v", [i / 1000 for i in range(1, 101)])
    assert figures["v_median_ms"] == pytest.approx(50.5)
    assert figures["v_p95_ms"] == pytest.approx(95.0)


def test_duplicate_registration_is_refused() -> None:
    name = "crt-rig-unit-duplicate"
    try:
        api.benchmark(name)(lambda client, ctx: {})
        with pytest.raises(ValueError, match="twice"):
            api.benchmark(name)(lambda client, ctx: {})
    finally:
        api.REGISTRY[:] = [b for b in api.REGISTRY if b.name != name]
