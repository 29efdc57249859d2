"""Routes: (method, path pattern) -> handler, with `{name}` path parameters."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from crid.docker.errors import RouteNotFound
from crid.docker.http import Handler, Hijack, Request, Response

_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    streams_body: bool = False  # the handler reads its body as a stream (uploads)


class Router:
    def __init__(self) -> None:
        self._routes: list[Route] = []

    def add(self, method: str, path: str, handler: Handler, streams_body: bool = False) -> None:
        """`path` like "/containers/{id}/start"; `{id}` matches one segment, `{name}` any
        number (image names have slashes). `streams_body`: the handler reads the body as
        `req.body_stream()` (up to the upload limit) instead of `req.body` (up to MAX_BODY)."""
        def group(m: re.Match[str]) -> str:
            return f"(?P<{m.group(1)}>{'.+' if m.group(1) == 'name' else '[^/]+'})"
        self._routes.append(Route(method, re.compile("^" + _PARAM.sub(group, path) + "/?$"),
                                  handler, streams_body))

    def add_lazy(self, routes: Sequence[LazyRoute], register: Callable[[Router], None]) -> None:
        """Routes whose handlers are made by the first request to any of them: `register`
        adds them to a router of their own then. A module only some requests need (a build
        engine, save, load) is then not imported, nor resident, until one comes; the routes
        keep their place in the match order. `routes` must be what `register` adds."""
        group = _LazyGroup(register)
        for route in routes:
            self.add(route.method, route.path, group.handle, route.streams_body)

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        """The handler and path parameters; HEAD is served by GET routes.

        Raises:
            RouteNotFound: no route has this method and path.
        """
        route, params = self.route(method, path)
        return route.handler, params

    def route(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        """The route and path parameters (see match).

        Raises:
            RouteNotFound: no route has this method and path.
        """
        for route in self._routes:
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                m = route.pattern.match(path)
                if m:
                    return route, m.groupdict()
        raise RouteNotFound("page not found")


@dataclass(frozen=True)
class LazyRoute:
    method: str
    path: str
    streams_body: bool = False


class _LazyGroup:
    """Loads its routes once, on first use, then dispatches to them."""

    def __init__(self, register: Callable[[Router], None]) -> None:
        self._register = register
        self._router: Router | None = None
        self._lock = threading.Lock()

    def handle(self, req: Request) -> Response | Hijack:
        with self._lock:  # two first requests at once load once
            if self._router is None:
                router = Router()
                self._register(router)
                self._router = router
        handler, _ = self._router.match(req.method, req.path)
        return handler(req)
