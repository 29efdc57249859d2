"""A server interceptor: one debug line per RPC, and domain errors turned into statuses."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import structlog

from crid.server.errors import status_for

log = structlog.get_logger("crid.rpc")


class ErrorsAndLogging(grpc.ServerInterceptor):
    """Wraps every handler: maps exceptions (see errors.py) and logs method, duration, status."""

    def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None:
            return None
        method = details.method.rsplit("/", 1)[-1]
        if handler.unary_unary:
            return handler._replace(unary_unary=_wrap_unary(handler.unary_unary, method))
        if handler.unary_stream:
            return handler._replace(unary_stream=_wrap_stream(handler.unary_stream, method))
        return handler


def _abort(context: grpc.ServicerContext, exc: BaseException, method: str) -> None:
    code = status_for(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.error("rpc failed", method=method, error=str(exc), exc_info=exc)
    context.abort(code, f"{method}: {exc}")


def _wrap_unary(fn: Callable, method: str) -> Callable:
    def handler(request: Any, context: grpc.ServicerContext) -> Any:
        start = time.monotonic()
        code = "OK"
        with structlog.contextvars.bound_contextvars(request_id=uuid.uuid4().hex[:12]):
            try:
                return fn(request, context)
            except Exception as exc:  # noqa: BLE001 - every failure becomes a status
                if context.code() is not None:  # already aborted by the servicer
                    code = str(context.code().name)
                    raise
                code = status_for(exc).name
                _abort(context, exc, method)
            finally:
                log.debug("rpc", method=method, status=code,
                          duration_ms=round((time.monotonic() - start) * 1000, 3))
    return handler


def _wrap_stream(fn: Callable, method: str) -> Callable:
    def handler(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        start = time.monotonic()
        code = "OK"
        try:
            yield from fn(request, context)
        except Exception as exc:  # noqa: BLE001
            if context.code() is not None:
                code = str(context.code().name)
                raise
            code = status_for(exc).name
            _abort(context, exc, method)
        finally:
            log.debug("rpc", method=method, status=code, stream=True,
                      duration_ms=round((time.monotonic() - start) * 1000, 3))
    return handler
