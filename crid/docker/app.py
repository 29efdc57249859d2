"""The Docker front door assembled: routes over the domain, the socket server, and the
watcher that acts on Docker-side exits (AutoRemove, RestartPolicy).

The build engine (and dockerfile-parse), commit, export, save and load are imported by the
first request that needs them (`Router.add_lazy`): a node that never builds or saves an image
keeps none of them resident (issue 14's memory per node)."""

from __future__ import annotations

import importlib
import secrets
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from crid.build.leftovers import reap_builds
from crid.build.runner import RunnerOptions
from crid.docker import (
    archive,
    changes,
    containers,
    images,
    networks,
    system,
    system_df,
    volumes,
)
from crid.docker.deps import DockerDeps
from crid.docker.lifecycle import ExitPolicies
from crid.docker.router import LazyRoute, Router
from crid.docker.server import DockerServer, DockerServerOptions
from crid.docker.tls import TcpOptions
from runtime.linux.atomic import write_atomic

if TYPE_CHECKING:
    from crid.build.service import BuildService

# module -> its routes, as its register() adds them (tests/unit/docker/test_lazy_routes.py)
LAZY_ROUTES = {
    "commit": (LazyRoute("POST", "/commit"),),
    "export": (LazyRoute("GET", "/containers/{id}/export"),),
    "save": (LazyRoute("GET", "/images/get"), LazyRoute("GET", "/images/{name}/get")),
    "load": (LazyRoute("POST", "/images/load", streams_body=True),),
}
BUILD_ROUTES = (LazyRoute("POST", "/build", streams_body=True), LazyRoute("POST", "/build/prune"))


def _lazy_module(name: str, deps: DockerDeps) -> Callable[[Router], None]:
    def register(router: Router) -> None:
        importlib.import_module(f"crid.docker.{name}").register(router, deps)
    return register


class DockerFrontDoor:
    """Start after the domain is reconciled; stop before it is torn down."""

    def __init__(self, deps: DockerDeps, socket_path: Path, group: str = "",
                 upload_limit: int = DockerServerOptions.upload_limit,
                 tcp: TcpOptions | None = None) -> None:
        deps.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # What a commit, import or load in progress when the daemon died was staging.
        shutil.rmtree(deps.state_dir / "work", ignore_errors=True)
        engine_id = deps.state_dir / "engine-id"
        if not engine_id.exists():
            write_atomic(engine_id, secrets.token_hex(16).encode())
        router = Router()
        system.register(router, deps)
        images.register(router, deps)
        containers.register(router, deps)
        archive.register(router, deps)
        system_df.register(router, deps)
        changes.register(router, deps)
        for name, routes in LAZY_ROUTES.items():
            router.add_lazy(routes, _lazy_module(name, deps))
        volumes.register(router, deps)
        networks.register(router, deps)
        self._deps = deps
        self._volumes = deps.volumes
        self._builds: BuildService | None = None
        self._builds_lock = threading.Lock()
        self._stopped = False
        router.add_lazy(BUILD_ROUTES, self._register_builds)
        self._policies = ExitPolicies(deps)
        opts = DockerServerOptions(socket_path, group, upload_limit=upload_limit,
                                   spool_dir=deps.state_dir / "uploads", tcp=tcp)
        self._server = DockerServer(opts, router)

    def start(self) -> None:
        self._volumes.reap()
        d = self._deps
        reap_builds(d.pods, d.containers, d.events, RunnerOptions(self._build_root(),
                                                                   d.cgroup_parent))
        self._policies.start()
        self._server.start()

    def stop(self) -> None:
        with self._builds_lock:
            self._stopped = True
            builds = self._builds
        if builds is not None:
            builds.stop()
        self._server.stop()
        self._policies.stop()

    def _build_root(self) -> Path:
        return self._deps.root / "build"

    def _register_builds(self, router: Router) -> None:
        """The build service, made by the first build request."""
        from crid.build.service import BuildService, BuildServiceOptions
        from crid.docker import build
        from crid.docker.build_steps import KeptStepRunner

        d = self._deps
        svc = BuildService(d.images, d.pods, d.containers, d.events,
                           BuildServiceOptions(self._build_root(), d.cgroup_parent,
                                               short_name_registries=d.short_names),
                           kept_runner=lambda opts: KeptStepRunner(d, opts))
        with self._builds_lock:
            self._builds = svc
            if self._stopped:  # a first build as the daemon stops is refused, as any is
                svc.stop()
        build.register(router, svc)
