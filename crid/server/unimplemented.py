"""Fills every RPC a servicer does not define with one that answers UNIMPLEMENTED, by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from crid.api import api_pb2


def fill_unimplemented(cls: type, service_name: str) -> type:
    """Every method of the CRI service missing from cls answers UNIMPLEMENTED."""
    service = api_pb2.DESCRIPTOR.services_by_name[service_name]
    for method in service.methods:
        if method.name not in cls.__dict__:
            setattr(cls, method.name, _unimplemented(method.name, method.server_streaming))
    return cls


def _unimplemented(name: str, streaming: bool) -> Callable[..., Any]:
    def unary(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not implemented by crid yet")

    def stream(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is not implemented by crid yet")
        yield  # pragma: no cover - makes this a generator, as streaming handlers are

    fn = stream if streaming else unary
    fn.__name__ = name
    return fn
