"""Metrics and tracing as configured, turned on and off by the daemon at start and on reload.

Nothing here imports prometheus_client or opentelemetry: `crid.metrics` and `crid.tracing` are
imported the first time they are enabled, so a daemon with them off (the default) never pays.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import structlog

from crid.config import MetricsConfig, TracingConfig, split_host_port
from crid.events import EventBus
from crid.metric_sources import MetricSources

log = structlog.get_logger("crid.observability")

EVENT_POLL_SECONDS = 60.0  # the subscription ends on close(); the poll only bounds a lost wake


class Observability:
    """Holds the enabled observers (the gRPC interceptor reads `observers()` per call), the
    metrics HTTP server and the tracer provider."""

    def __init__(self, events: EventBus) -> None:
        self._events = events
        self._sources: MetricSources | None = None  # bound once the managers exist
        self._metrics: Any = None  # crid.metrics.Metrics once first enabled; kept when off
        self._serving = ""  # the listen address metrics are served on, "" when off
        self._tracing: Any = None  # crid.tracing.Tracing while enabled
        self._tracing_cfg: TracingConfig | None = None
        self._observers: tuple[Any, ...] = ()
        self._watcher: threading.Thread | None = None

    def bind(self, sources: MetricSources) -> None:
        self._sources = sources

    def observers(self) -> tuple[Any, ...]:
        return self._observers

    def _update_observers(self) -> None:
        self._observers = tuple(o for o in (self._metrics if self._serving else None,
                                            self._tracing) if o is not None)

    def span(self, name: str, **attributes: str) -> AbstractContextManager[Any]:
        """A child span of the current call's span; a no-op while tracing is off."""
        tracing = self._tracing
        return tracing.span(name, attributes) if tracing is not None else nullcontext()

    def apply_tracing(self, cfg: TracingConfig) -> str:
        """Makes tracing match `cfg`; returns what changed ("" for nothing)."""
        wanted = cfg if cfg.enable else None
        if wanted == self._tracing_cfg:
            return ""
        old = self._tracing
        if wanted is not None:
            from crid.tracing import Tracing
            self._tracing = Tracing(wanted)
        else:
            self._tracing = None
        self._tracing_cfg = wanted
        self._update_observers()
        if old is not None:
            old.close()  # after the swap: calls from now on go to the new provider
        return f"tracing to {cfg.endpoint}" if wanted else "tracing off"

    @property
    def metrics_url(self) -> str:
        """http://HOST:PORT/metrics with the bound port ("" when off)."""
        if not self._serving:
            return ""
        host, _ = split_host_port(self._serving)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self._metrics.port}/metrics"

    def apply_metrics(self, cfg: MetricsConfig) -> str:
        """Makes metrics match `cfg`; returns what changed ("" for nothing).

        Raises:
            OSError: the listen address cannot be bound (the previous state is kept).
        """
        wanted = cfg.listen if cfg.enable else ""
        if wanted == self._serving:
            return ""
        if self._metrics is None:
            from crid.metrics import Metrics
            assert self._sources is not None, "bind() the sources first"
            self._metrics = Metrics(self._sources)
            self._watch_ooms()
        old = self._serving
        if old:
            self._metrics.close()
        try:
            if wanted:
                self._metrics.serve(wanted)
        except OSError:
            if old:
                self._metrics.serve(old)
            raise
        self._serving = wanted
        self._update_observers()
        return f"metrics on {wanted}" if wanted else "metrics off"

    def pull_finished(self, seconds: float, code: str, fetched: int) -> None:
        """One image pull ended, from either front door (crid.observed_images)."""
        if self._serving:
            self._metrics.pull_finished(seconds, code, fetched)

    def _watch_ooms(self) -> None:
        """Counts OOM kills from the container event stream: every path that records an exit
        (the exit watcher, a stop, the start-up reconciliation) publishes it there once."""
        sub = self._events.subscribe()

        def run() -> None:
            for event in sub.events(poll=EVENT_POLL_SECONDS):
                if (self._serving and event.kind == "STOPPED"
                        and getattr(event.payload, "reason", "") == "OOMKilled"):
                    self._metrics.oom_killed()

        self._watcher = threading.Thread(target=run, name="metrics-events", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        """Stops the metrics server and exports the spans still queued; the event watcher
        ends when the event bus closes."""
        if self._serving:
            self._metrics.close()
            self._serving = ""
        if self._tracing is not None:
            self._tracing.close()
            self._tracing, self._tracing_cfg = None, None
        self._observers = ()
