"""A server interceptor: domain errors turned into statuses, one log line per failed RPC (a
debug line per successful one), and each call reported to the observers (metrics, tracing)."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import grpc
import structlog

from crid.server.errors import status_for
from crid.server.request_fields import identify

log = structlog.get_logger("crid.rpc")

# The caller's mistake or the object's state: a warning. Anything else (INTERNAL, UNKNOWN,
# UNAVAILABLE, DEADLINE_EXCEEDED, DATA_LOSS) is crid's or its dependencies' failure: an error.
_CLIENT_ERRORS = frozenset({
    grpc.StatusCode.CANCELLED, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ABORTED, grpc.StatusCode.OUT_OF_RANGE, grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.UNAUTHENTICATED,
})


class RpcObserver(Protocol):
    """Told about every call: metrics count them, tracing wraps them in a span."""

    def call(self, method: str, fields: dict[str, str],
             metadata: dict[str, str]) -> contextlib.AbstractContextManager[Any]:
        """A context manager around the handler (`metadata`: the call's gRPC metadata, e.g. a
        W3C `traceparent`); its value gets `.code = <name>` on the way out if it has that
        attribute."""

    def finished(self, method: str, code: str, seconds: float) -> None:
        """The call ended with status `code` (a grpc.StatusCode name) after `seconds`."""


class ErrorsAndLogging(grpc.ServerInterceptor):
    """Wraps every handler: maps exceptions (see errors.py), logs failures, tells observers."""

    def __init__(self, observers: Callable[[], Sequence[RpcObserver]] = tuple) -> None:
        # A callable, read per call: a reload turns metrics and tracing on and off.
        self._observers = observers

    def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method.rsplit("/", 1)[-1]
        if handler.unary_unary:
            return handler._replace(unary_unary=self._wrap_unary(handler.unary_unary, method))
        if handler.unary_stream:
            return handler._replace(unary_stream=self._wrap_stream(handler.unary_stream, method))
        return handler

    def _wrap_unary(self, fn: Callable, method: str) -> Callable:
        def handler(request: Any, context: grpc.ServicerContext) -> Any:
            with _Call(method, request, context, tuple(self._observers())):
                return fn(request, context)
        return handler

    def _wrap_stream(self, fn: Callable, method: str) -> Callable:
        def handler(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with _Call(method, request, context, tuple(self._observers()), stream=True):
                yield from fn(request, context)
        return handler


class _Call:
    """One call's context: request id, observers, and the exception-to-status mapping."""

    def __init__(self, method: str, request: Any, context: grpc.ServicerContext,
                 observers: tuple[RpcObserver, ...], stream: bool = False) -> None:
        self.method, self.request, self.context = method, request, context
        self.observers, self.stream = observers, stream
        self.scopes = contextlib.ExitStack()
        self.spans: list[Any] = []
        self.start = 0.0

    def __enter__(self) -> _Call:
        self.start = time.monotonic()
        self.scopes.enter_context(
            structlog.contextvars.bound_contextvars(request_id=uuid.uuid4().hex[:12]))
        if self.observers:
            fields = identify(self.request)
            metadata = dict(self.context.invocation_metadata() or ())
            self.spans = [self.scopes.enter_context(o.call(self.method, fields, metadata))
                          for o in self.observers]
        return self

    def __exit__(self, _t: Any, exc: BaseException | None, _tb: Any) -> None:
        try:
            code, message = self._outcome(exc)
            seconds = time.monotonic() - self.start
            self._log(code, message, seconds, exc)
            for span in self.spans:
                if hasattr(span, "code"):
                    span.code = code.name
            for observer in self.observers:
                observer.finished(self.method, code.name, seconds)
        finally:
            self.scopes.close()
        if exc is None or self.context.code() is not None or not isinstance(exc, Exception):
            return  # succeeded, already aborted by the servicer, or GeneratorExit & co
        self.context.abort(code, message)  # raises: the status goes to the client

    def _outcome(self, exc: BaseException | None) -> tuple[grpc.StatusCode, str]:
        aborted = self.context.code()
        if aborted is not None:  # the servicer aborted, or set a code and returned
            return aborted, str(self.context.details() or "")
        if exc is None or not isinstance(exc, Exception):
            return grpc.StatusCode.OK, ""
        return status_for(exc), f"{self.method}: {exc}"

    def _log(self, code: grpc.StatusCode, message: str, seconds: float,
             exc: BaseException | None) -> None:
        duration_ms = round(seconds * 1000, 3)
        extra = {"stream": True} if self.stream else {}
        if code == grpc.StatusCode.OK:
            log.debug("rpc", method=self.method, status=code.name, duration_ms=duration_ms,
                      **extra)
            return
        fields = identify(self.request)
        if code in _CLIENT_ERRORS:
            log.warning("rpc failed", method=self.method, status=code.name, error=message,
                        duration_ms=duration_ms, **fields, **extra)
            return
        # A traceback only where it can show a bug: a domain error's message says it all.
        trace = exc if code == grpc.StatusCode.INTERNAL and self.context.code() is None else None
        log.error("rpc failed", method=self.method, status=code.name, error=message,
                  duration_ms=duration_ms, exc_info=trace, **fields, **extra)
