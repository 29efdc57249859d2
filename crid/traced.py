"""Child spans around the steps of a call that tracing shows on their own: the pod network's
set-up and teardown and the runtime's create and start. Wrappers over the real components,
installed by the daemon; `span` is Observability.span, a no-op while tracing is off."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from crid.network.api import NetworkStatus, PodNetworkRequest, PodNetworkResult

Span = Callable[..., AbstractContextManager[Any]]


class TracedNetwork:
    """A PodNetwork whose setup and teardown are spans of their own."""

    def __init__(self, inner: Any, span: Span) -> None:
        self._inner, self._span = inner, span

    def setup(self, req: PodNetworkRequest) -> PodNetworkResult:
        with self._span("network.setup", pod_id=req.pod_id, pod_name=req.pod_name):
            result: PodNetworkResult = self._inner.setup(req)
            return result

    def teardown(self, req: PodNetworkRequest) -> None:
        with self._span("network.teardown", pod_id=req.pod_id, pod_name=req.pod_name):
            self._inner.teardown(req)

    def check(self, req: PodNetworkRequest) -> None:
        self._inner.check(req)

    def status(self) -> NetworkStatus:
        status: NetworkStatus = self._inner.status()
        return status

    def update_pod_cidr(self, cidr: str) -> None:
        self._inner.update_pod_cidr(cidr)

    def release_orphans(self, live_pod_ids: set[str]) -> list[str]:
        released: list[str] = self._inner.release_orphans(live_pod_ids)
        return released


class TracedRuntime:
    """A ContainerRuntime whose create and start are spans; every other call goes through."""

    def __init__(self, inner: Any, span: Span) -> None:
        self._inner, self._span = inner, span

    def create(self, cid: str, *args: Any, **kwargs: Any) -> Any:
        with self._span("runtime.create", container_id=cid):
            return self._inner.create(cid, *args, **kwargs)

    def start(self, cid: str) -> None:
        with self._span("runtime.start", container_id=cid):
            self._inner.start(cid)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
