"""The Docker front door assembled: routes over the domain, the socket server, and the
watcher that acts on Docker-side exits (AutoRemove, RestartPolicy)."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from crid.build.service import BuildService, BuildServiceOptions
from crid.docker import (
    archive,
    build,
    changes,
    commit,
    containers,
    export,
    images,
    load,
    networks,
    save,
    system,
    system_df,
    volumes,
)
from crid.docker.build_steps import KeptStepRunner
from crid.docker.deps import DockerDeps
from crid.docker.lifecycle import ExitPolicies
from crid.docker.router import Router
from crid.docker.server import DockerServer, DockerServerOptions
from crid.docker.tls import TcpOptions
from runtime.linux.atomic import write_atomic


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
        commit.register(router, deps)
        export.register(router, deps)
        save.register(router, deps)
        load.register(router, deps)
        volumes.register(router, deps)
        networks.register(router, deps)
        self._volumes = deps.volumes
        self._builds = BuildService(deps.images, deps.pods, deps.containers, deps.events,
                                    BuildServiceOptions(deps.root / "build", deps.cgroup_parent,
                                                        short_name_registries=deps.short_names),
                                    kept_runner=lambda opts: KeptStepRunner(deps, opts))
        build.register(router, self._builds)
        self._policies = ExitPolicies(deps)
        opts = DockerServerOptions(socket_path, group, upload_limit=upload_limit,
                                   spool_dir=deps.state_dir / "uploads", tcp=tcp)
        self._server = DockerServer(opts, router)

    def start(self) -> None:
        self._volumes.reap()
        self._builds.reap()
        self._policies.start()
        self._server.start()

    def stop(self) -> None:
        self._builds.stop()
        self._server.stop()
        self._policies.stop()
