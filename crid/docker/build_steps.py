"""RUN steps of a `docker build --rm=false`: each step is a Docker container like any
`docker create` makes (a generated name, `docker ps -a` lists it, `docker rm` removes it), left
behind when it exits, as Docker's classic builder leaves its intermediate containers.

A cancelled build removes its step container all the same: nothing of a build the client
abandoned is left.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from crid.build.runner import Cancelled, Output, RunnerOptions, RunStep, StepResult, follow
from crid.docker import lifecycle
from crid.docker.containers_view import find
from crid.docker.create_body import CreateBody
from crid.docker.deps import DockerDeps
from crid.errors import CridError


class KeptStepRunner:
    """StepRunner over the Docker front door's containers."""

    def __init__(self, d: DockerDeps, opts: RunnerOptions) -> None:
        self._d, self._opts = d, opts

    def _body(self, step: RunStep) -> CreateBody:
        r = self._opts.resources
        nano = r.cpu_quota * 1_000_000_000 // r.cpu_period if r.cpu_quota and r.cpu_period \
            else 0
        return CreateBody(
            image=step.image_id, entrypoint=list(step.argv[:1]), cmd=list(step.argv[1:]),
            env=[f"{k}={v}" for k, v in step.env], user=step.user,
            working_dir=step.workdir, memory=r.memory_limit, cpu_shares=r.cpu_shares,
            nano_cpus=nano, network_mode="host" if self._opts.host_network else "bridge")

    @contextlib.contextmanager
    def run(self, step: RunStep, started: Callable[[str], None], output: Output,
            cancelled: Cancelled = lambda: False) -> Iterator[StepResult]:
        d = self._d
        cid = lifecycle.create(d, "", self._body(step))
        try:
            record = find(d, cid).record
            assert record is not None
            sub = d.events.subscribe()
            try:
                lifecycle.start(d, cid)
                started(cid)
                code = follow(d.containers, record.id, sub, Path(record.log_path), output,
                              cancelled)
            finally:
                sub.close()
            points = tuple(m["destination"] for m in d.containers.spec(record.id)["mounts"])
        except BaseException:
            with contextlib.suppress(CridError):
                lifecycle.remove(d, cid, force=True, remove_volumes=True)
            raise
        yield StepResult(record.id, code, Path(record.bundle) / "upper", points)
