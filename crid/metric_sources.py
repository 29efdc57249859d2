"""What the scrape-time metrics read, declared apart from `crid.metrics` (which imports
prometheus_client and is loaded only when enabled) and `crid.observability` (which loads it), so
neither imports the other's module for the type."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSources:
    """What the scrape-time gauges read: each returns the current states, one entry per
    object (e.g. ["running", "running", "exited"])."""

    container_states: Callable[[], Iterable[str]]
    pod_states: Callable[[], Iterable[str]]
    streaming_sessions: Callable[[], int]
