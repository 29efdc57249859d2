"""Routes loaded by their first request: declared as their module adds them, loaded once,
dispatched with their path parameters."""

from __future__ import annotations

import importlib
import threading

import pytest

from crid.docker.app import BUILD_ROUTES, LAZY_ROUTES
from crid.docker.errors import RouteNotFound
from crid.docker.http import Request, Response
from crid.docker.router import LazyRoute, Router


def _table(router: Router) -> list[tuple[str, str, bool]]:
    return [(r.method, r.pattern.pattern, r.streams_body) for r in router._routes]


def _declared(routes: tuple[LazyRoute, ...]) -> list[tuple[str, str, bool]]:
    router = Router()
    for r in routes:
        router.add(r.method, r.path, lambda req: Response(200), r.streams_body)
    return _table(router)


@pytest.mark.parametrize("name", sorted(LAZY_ROUTES))
def test_declared_routes_are_the_ones_the_module_adds(name: str) -> None:
    router = Router()
    importlib.import_module(f"crid.docker.{name}").register(router, None)
    assert _table(router) == _declared(LAZY_ROUTES[name])


def test_declared_build_routes_are_the_ones_the_build_module_adds() -> None:
    from crid.docker import build

    router = Router()
    build.register(router, None)  # type: ignore[arg-type]
    assert _table(router) == _declared(BUILD_ROUTES)


def _serve(router: Router, method: str, path: str) -> Response:
    handler, params = router.match(method, path)
    return handler(Request(method, path, {}, [], b"", "", params=params))


def test_a_lazy_group_loads_once_and_dispatches_with_parameters() -> None:
    loads = []

    def register(router: Router) -> None:
        loads.append(threading.get_ident())
        router.add("GET", "/things/{name}/get",
                   lambda req: Response(200, req.params["name"].encode()))
        router.add("POST", "/things/load", lambda req: Response(201))

    outer = Router()
    outer.add_lazy((LazyRoute("GET", "/things/{name}/get"), LazyRoute("POST", "/things/load")),
                   register)
    assert loads == []
    assert _serve(outer, "GET", "/things/a/b/get").body == b"a/b"
    assert _serve(outer, "HEAD", "/things/x/get").body == b"x"  # HEAD: the GET route
    assert _serve(outer, "POST", "/things/load").status == 201
    assert len(loads) == 1
    with pytest.raises(RouteNotFound):
        outer.match("GET", "/things/load")
