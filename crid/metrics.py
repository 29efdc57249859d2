"""Prometheus metrics (`[metrics] enable = true`), named as CRI-O's where one exists.

Imported only when metrics are enabled: prometheus_client's imports take longer than the rest of
start-up, which a daemon with metrics off (the default) and `crid --version` should not pay.

Counters and histograms are updated by the events that make them (an RPC ending, a pull's
bytes, an OOM kill); container, pod and session counts are read from memory at scrape time.
"""

from __future__ import annotations

import threading
from collections import Counter as Tally
from collections.abc import Iterable
from contextlib import nullcontext
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from crid.config import split_host_port
from crid.metric_sources import MetricSources
from crid.version import CRI_API_VERSION, __version__

# From 1 ms (List*, Version) to 5 min (a large pull): the kubelet's own CRI buckets span this.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
                   60, 120, 300)
class _StateCollector(Collector):
    """crid_containers / crid_pods by state, and open streaming sessions, counted when
    scraped (from the managers' in-memory indexes: no disk, no locks held long)."""

    def __init__(self, sources: MetricSources) -> None:
        self._s = sources

    def collect(self) -> Iterable[Any]:
        yield _by_state("crid_containers", "Containers by state", self._s.container_states(),
                        ("created", "running", "exited", "unknown"))
        yield _by_state("crid_pods", "Pod sandboxes by state", self._s.pod_states(),
                        ("ready", "notready"))
        yield GaugeMetricFamily("crid_streaming_sessions",
                                "Open exec/attach/port-forward connections",
                                value=self._s.streaming_sessions())


def _by_state(name: str, doc: str, states: Iterable[str],
              known: tuple[str, ...]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["state"])
    counts = Tally(states)
    for state in sorted(set(known) | set(counts)):
        family.add_metric([state], counts[state])
    return family


class Metrics:
    """The daemon's metrics and their HTTP server; also an RpcObserver for the interceptor."""

    def __init__(self, sources: MetricSources) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self._ops = Counter("crid_operations", "CRI calls by method and gRPC status code",
                            ["operation", "code"], registry=r)
        self._errors = Counter("crid_operations_errors", "CRI calls that failed, by method and "
                               "gRPC status code", ["operation", "code"], registry=r)
        self._latency = Histogram("crid_operations_latency_seconds", "CRI call latency",
                                  ["operation", "code"], buckets=LATENCY_BUCKETS, registry=r)
        self._pull_ok = Counter("crid_image_pulls_success", "Image pulls that succeeded",
                                registry=r)
        self._pull_failed = Counter("crid_image_pulls_failure", "Image pulls that failed, by "
                                    "gRPC status code", ["code"], registry=r)
        self._pull_bytes = Counter("crid_image_pulls_bytes", "Layer bytes fetched from "
                                   "registries", registry=r)
        self._pull_seconds = Histogram("crid_image_pull_duration_seconds", "Image pull "
                                       "duration, successful or not", buckets=LATENCY_BUCKETS,
                                       registry=r)
        self._ooms = Counter("crid_containers_oom", "Containers killed by the OOM killer",
                             registry=r)
        info = Gauge("crid_build_info", "crid's version", ["version", "cri_version"],
                     registry=r)
        info.labels(__version__, CRI_API_VERSION).set(1)
        ProcessCollector(registry=r)  # process_start_time_seconds, CPU, RSS, open fds
        r.register(_StateCollector(sources))
        self._server: Any = None
        self._thread: threading.Thread | None = None

    # --- RpcObserver -----------------------------------------------------------------------

    def call(self, method: str, fields: dict[str, str], metadata: dict[str, str]) -> Any:
        return nullcontext()

    def finished(self, method: str, code: str, seconds: float) -> None:
        self._ops.labels(method, code).inc()
        self._latency.labels(method, code).observe(seconds)
        if code != "OK":
            self._errors.labels(method, code).inc()

    # --- events ----------------------------------------------------------------------------

    def pull_finished(self, seconds: float, code: str, fetched: int) -> None:
        self._pull_seconds.observe(seconds)
        self._pull_bytes.inc(fetched)
        if code == "OK":
            self._pull_ok.inc()
        else:
            self._pull_failed.labels(code).inc()

    def oom_killed(self) -> None:
        self._ooms.inc()

    # --- serving ---------------------------------------------------------------------------

    def serve(self, listen: str) -> None:
        """Serves /metrics on `listen` (host:port) from a thread of its own.

        Raises:
            OSError: the address cannot be bound.
        """
        host, port = split_host_port(listen)
        self._server, self._thread = start_http_server(port, host, registry=self.registry)

    @property
    def port(self) -> int:
        return int(self._server.server_port) if self._server is not None else 0

    def close(self) -> None:
        """Stops the HTTP server (the counters stay, for a later serve())."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
