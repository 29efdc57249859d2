"""OpenTelemetry tracing (`[tracing] enable = true`): a span per CRI call, children for the image
pull, the runtime's create and start and the pod network's set-up, exported over OTLP/gRPC.

Imported only when tracing is enabled: the SDK and the OTLP exporter cost ~175 ms of imports.

The kubelet (1.27+, with its tracing on) sends a W3C `traceparent` in each call's gRPC
metadata; a call's span continues that trace, so a pod's start shows up under the kubelet's
sync span. Sampling follows the caller's decision, and `sampling_rate` decides for calls that
come without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from crid.config import TracingConfig
from crid.version import __version__

EXPORT_DELAY_MS = 1000  # spans leave in batches at most this late
# An unreachable collector must not hold up the daemon's stop (or a reload) for long: the last
# batch gets this many seconds, retries included, and is dropped after.
EXPORT_TIMEOUT_SECONDS = 2
_PROPAGATOR = TraceContextTextMapPropagator()


def otlp_exporter(cfg: TracingConfig) -> OTLPSpanExporter:
    """The OTLP/gRPC exporter for `endpoint` (http:// means no TLS)."""
    return OTLPSpanExporter(endpoint=cfg.endpoint, insecure=cfg.endpoint.startswith("http://"),
                            timeout=EXPORT_TIMEOUT_SECONDS)


class Tracing:
    """The daemon's tracer provider; an RpcObserver (a server span per call) and the source
    of child spans (`span`)."""

    def __init__(self, cfg: TracingConfig, exporter: SpanExporter | None = None) -> None:
        # A provider of our own, not the global one: the tests start several, and a reload
        # may replace it.
        self._provider = TracerProvider(
            resource=Resource.create({"service.name": "crid", "service.version": __version__}),
            sampler=ParentBased(TraceIdRatioBased(cfg.sampling_rate)))
        self._provider.add_span_processor(BatchSpanProcessor(
            exporter or otlp_exporter(cfg), schedule_delay_millis=EXPORT_DELAY_MS,
            export_timeout_millis=EXPORT_TIMEOUT_SECONDS * 1000))
        self._tracer = self._provider.get_tracer("crid", __version__)

    # --- RpcObserver -----------------------------------------------------------------------

    def call(self, method: str, fields: dict[str, str], metadata: Mapping[str, Any]) -> _RpcSpan:
        carrier = {k: v for k, v in metadata.items() if isinstance(v, str)}
        attrs = {"rpc.system": "grpc", "rpc.method": method,
                 **{f"crid.{k}": v for k, v in fields.items()}}
        return _RpcSpan(self._tracer.start_as_current_span(
            method, context=_PROPAGATOR.extract(carrier), kind=SpanKind.SERVER,
            attributes=attrs, record_exception=False, set_status_on_exception=False))

    def finished(self, method: str, code: str, seconds: float) -> None:
        pass

    # --- child spans -----------------------------------------------------------------------

    def span(self, name: str, attributes: dict[str, str]) -> Any:
        """A span under the current one (the call's), for one step of it."""
        return self._tracer.start_as_current_span(name, attributes=attributes)

    def close(self) -> None:
        """Exports what is still queued, then stops."""
        self._provider.shutdown()


class _RpcSpan:
    """A call's span; the interceptor sets `.code` (the gRPC status name) before it ends."""

    def __init__(self, scope: Any) -> None:
        self._scope = scope
        self.code = "OK"

    def __enter__(self) -> _RpcSpan:
        self._span = self._scope.__enter__()
        return self

    def __exit__(self, t: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._span.set_attribute("rpc.grpc.status_code", self.code)
        if self.code != "OK":
            self._span.set_status(Status(StatusCode.ERROR, self.code))
        self._scope.__exit__(t, exc, tb)

