"""A collector stand-in: an OTLP/gRPC trace receiver on loopback that keeps what it is sent."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as ts_grpc


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    trace_id: str  # hex
    span_id: str
    parent_span_id: str  # "" for a root
    kind: int
    attributes: dict[str, object]
    status_code: int  # 0 unset, 1 ok, 2 error
    service: str


class Receiver(ts_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._cond = threading.Condition()
        self.endpoint = ""

    def Export(self, request: ts.ExportTraceServiceRequest, context: object) -> object:
        got = []
        for rs in request.resource_spans:
            service = {a.key: a.value.string_value for a in rs.resource.attributes}.get(
                "service.name", "")
            for ss in rs.scope_spans:
                got += [_span(s, service) for s in ss.spans]
        with self._cond:
            self.spans += got
            self._cond.notify_all()
        return ts.ExportTraceServiceResponse()

    def wait(self, done: Callable[[list[ReceivedSpan]], bool], timeout: float = 30) -> list:
        """The spans received once `done(spans)` holds. Raises AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done(self.spans):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"spans received so far: {[s.name for s in self.spans]}")
                self._cond.wait(left)
            return list(self.spans)


def _span(s: object, service: str) -> ReceivedSpan:
    attrs = {}
    for a in s.attributes:  # type: ignore[attr-defined]
        v = a.value
        attrs[a.key] = getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None
    return ReceivedSpan(s.name, s.trace_id.hex(), s.span_id.hex(),  # type: ignore[attr-defined]
                        s.parent_span_id.hex(), s.kind, attrs,  # type: ignore[attr-defined]
                        s.status.code, service)  # type: ignore[attr-defined]


@contextmanager
def otlp_receiver() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 (`.endpoint` = http://127.0.0.1:PORT), stopped afterwards."""
    receiver = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    ts_grpc.add_TraceServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    receiver.endpoint = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        server.stop(0).wait()
