"""crid.tracing with the SDK's in-memory exporter: call spans continue a W3C traceparent, carry
the status code, and child spans nest under them; Observability turns tracing on and off."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from crid.config import TracingConfig
from crid.events import EventBus
from crid.observability import Observability
from crid.tracing import Tracing

TRACE, PARENT = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def test_call_span_continues_the_traceparent_and_nests_children() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing(TracingConfig(enable=True), exporter)
    meta = {"traceparent": f"00-{TRACE}-{PARENT}-01", "user-agent": "kubelet"}
    with tracing.call("RunPodSandbox", {"pod": "ns/web"}, meta) as span:
        with tracing.span("network.setup", {"pod_id": "p1"}):
            pass
        span.code = "DEADLINE_EXCEEDED"
    tracing.close()
    child, call = exporter.get_finished_spans()
    assert (call.name, call.kind, f"{call.context.trace_id:032x}") == \
        ("RunPodSandbox", SpanKind.SERVER, TRACE)
    assert f"{call.parent.span_id:016x}" == PARENT and call.parent.is_remote
    assert call.attributes["crid.pod"] == "ns/web"
    assert call.attributes["rpc.grpc.status_code"] == "DEADLINE_EXCEEDED"
    assert call.status.status_code == StatusCode.ERROR
    assert (child.name, child.parent.span_id) == ("network.setup", call.context.span_id)


def test_an_unsampled_caller_is_followed_and_rate_zero_records_nothing_new() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing(TracingConfig(enable=True, sampling_rate=0.0), exporter)
    with tracing.call("Version", {}, {"traceparent": f"00-{TRACE}-{PARENT}-00"}):
        pass
    with tracing.call("Version", {}, {}):
        pass
    with tracing.call("Version", {}, {"traceparent": f"00-{TRACE}-{PARENT}-01"}):
        pass
    tracing.close()
    (only,) = exporter.get_finished_spans()
    assert f"{only.context.trace_id:032x}" == TRACE


def test_observability_turns_tracing_on_and_off() -> None:
    obs = Observability(EventBus())
    with obs.span("image.pull", image="x") as nothing:
        assert nothing is None  # off: a no-op
    assert obs.apply_tracing(TracingConfig(enable=True, endpoint="http://127.0.0.1:9")) == \
        "tracing to http://127.0.0.1:9"
    (tracing,) = obs.observers()
    assert isinstance(tracing, Tracing)
    assert obs.apply_tracing(TracingConfig(enable=True, endpoint="http://127.0.0.1:9")) == ""
    assert obs.apply_tracing(TracingConfig()) == "tracing off" and obs.observers() == ()
    obs.close()
