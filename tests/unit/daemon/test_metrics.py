"""The metrics module's counters and scrape-time gauges, and that nothing imports
prometheus_client or opentelemetry unless they are enabled."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from crid.config import MetricsConfig
from crid.events import ContainerEvent, EventBus
from crid.metric_sources import MetricSources
from crid.metrics import Metrics
from crid.observability import Observability

SOURCES = MetricSources(container_states=lambda: ["running", "running", "exited"],
                        pod_states=lambda: ["ready"], streaming_sessions=lambda: 2)


def _samples(text: str) -> dict[tuple[str, frozenset], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def _get(url: str) -> dict[tuple[str, frozenset], float]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return _samples(resp.read().decode())


def test_rpc_outcomes_become_counts_errors_latency_and_pulls() -> None:
    from prometheus_client import generate_latest

    m = Metrics(SOURCES)
    m.finished("ListContainers", "OK", 0.002)
    m.finished("PullImage", "OK", 3.0)
    m.finished("PullImage", "NOT_FOUND", 0.5)
    m.pull_finished(3.0, "OK", 1000)  # from the store, whichever door asked
    m.pull_finished(0.5, "NOT_FOUND", 0)
    m.oom_killed()
    s = _samples(generate_latest(m.registry).decode())
    assert s[("crid_operations_total", frozenset({("operation", "ListContainers"),
                                                  ("code", "OK")}))] == 1
    assert s[("crid_operations_errors_total", frozenset({("operation", "PullImage"),
                                                         ("code", "NOT_FOUND")}))] == 1
    assert s[("crid_operations_latency_seconds_bucket", frozenset(
        {("operation", "ListContainers"), ("code", "OK"), ("le", "0.0025")}))] == 1
    assert s[("crid_image_pulls_success_total", frozenset())] == 1
    assert s[("crid_image_pulls_failure_total", frozenset({("code", "NOT_FOUND")}))] == 1
    assert s[("crid_image_pull_duration_seconds_sum", frozenset())] == 3.5
    assert s[("crid_image_pulls_bytes_total", frozenset())] == 1000
    assert s[("crid_containers_oom_total", frozenset())] == 1
    assert s[("crid_containers", frozenset({("state", "running")}))] == 2
    assert s[("crid_containers", frozenset({("state", "created")}))] == 0
    assert s[("crid_pods", frozenset({("state", "notready")}))] == 0
    assert s[("crid_streaming_sessions", frozenset())] == 2


def test_observability_turns_metrics_on_moves_them_and_off() -> None:
    bus = EventBus()
    obs = Observability(bus)
    obs.bind(SOURCES)
    try:
        assert obs.apply_metrics(MetricsConfig()) == "" and obs.observers() == ()
        assert obs.apply_metrics(MetricsConfig(enable=True, listen="127.0.0.1:0")) == \
            "metrics on 127.0.0.1:0"
        (metrics,) = obs.observers()
        metrics.finished("Version", "OK", 0.001)
        bus.publish(ContainerEvent("c1", "STOPPED", 0, "p1", _Exited("OOMKilled")))
        bus.publish(ContainerEvent("c2", "STOPPED", 0, "p1", _Exited("Error")))
        first = obs.metrics_url
        assert _get(first)[("crid_operations_total",
                            frozenset({("operation", "Version"), ("code", "OK")}))] == 1
        assert obs.apply_metrics(MetricsConfig(enable=True, listen="[::1]:0")).startswith(
            "metrics on [::1]:0")
        assert obs.metrics_url.startswith("http://[::1]:")
        s = _get(obs.metrics_url)  # the counters survive the move
        assert s[("crid_operations_total", frozenset({("operation", "Version"),
                                                      ("code", "OK")}))] == 1
        oom = ("crid_containers_oom_total", frozenset())
        deadline = time.monotonic() + 10  # the event watcher runs in a thread of its own
        while _get(obs.metrics_url)[oom] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _get(obs.metrics_url)[oom] == 1
        assert obs.apply_metrics(MetricsConfig(enable=False)) == "metrics off"
        assert obs.observers() == () and obs.metrics_url == ""
    finally:
        obs.close()
        bus.close()


class _Exited:
    def __init__(self, reason: str) -> None:
        self.reason = reason


def test_serving_imports_no_metrics_or_tracing_library() -> None:
    code = ("import sys, crid.cli, crid.daemon; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('prometheus_client', 'opentelemetry')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
