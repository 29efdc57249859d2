"""Builds as the daemon runs them: a context archive in, an image out, nothing left behind.

Everything a build makes lives under `work_root` (its unpacked context, staged COPY trees,
read-only image views, layer tars, step logs) and goes when the build ends, however it ends;
what a killed daemon left there (and its step pods) is removed by `reap()` at start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from crid.build.builder import Builder, BuildOutput, BuildRequest, Puller
from crid.build.cache import BuildCache
from crid.build.context import unpack_context
from crid.build.errors import BuildCancelled
from crid.build.runner import Cancelled, PodStepRunner, RunnerOptions, StepRunner
from crid.containers.manager import ContainerManager
from crid.events import EventBus
from crid.pods.manager import PodManager
from crid.resources import Resources
from imagestore import (
    Credentials,
    ImageInUse,
    ImageRecord,
    ImageStore,
    InvalidReference,
    LayerProgress,
    Reference,
    reference_candidates,
)


@dataclass(frozen=True)
class BuildServiceOptions:
    work_root: Path  # <root>/build: contexts, staging, views, step logs, the cache file
    cgroup_parent: str = ""  # of RUN step pods
    context_limit: int = 8 << 30  # bytes of unpacked context
    short_name_registries: tuple[str, ...] = ("docker.io",)


@dataclass(frozen=True)
class BuildJob:
    """One build: the request without its context (the archive is unpacked by `run`)."""

    request: BuildRequest
    host_network: bool = False
    auth: dict[str, Credentials] = dataclasses.field(default_factory=dict)
    resources: Resources = Resources()  # of each RUN container
    keep_containers: bool = False  # rm=0: RUN steps run through `kept_runner`


class BuildService:
    def __init__(self, images: ImageStore, pods: PodManager, containers: ContainerManager,
                 events: EventBus, opts: BuildServiceOptions,
                 kept_runner: Callable[[RunnerOptions], StepRunner] | None = None) -> None:
        """`kept_runner`: the runner of builds that keep their RUN containers (rm=0), as
        containers of the front door that asked (None: they are removed all the same)."""
        self._images, self._pods, self._containers, self._events = \
            images, pods, containers, events
        self._kept_runner = kept_runner
        self._opts = opts
        self._cache = BuildCache(opts.work_root / "cache.json")
        self._stopping = threading.Event()
        self._active = 0
        self._idle = threading.Condition()

    def run(self, context: BinaryIO, job: BuildJob, out: BuildOutput,
            cancelled: Cancelled = lambda: False) -> str:
        """Unpacks `context` and builds; returns the image id.

        Raises:
            BuildError (BuildCancelled), and the image store's and managers' errors.
        """
        with self._idle:
            if self._stopping.is_set():
                raise BuildCancelled("the daemon is stopping")
            self._active += 1
        try:
            return self._run(context, job, out,
                             lambda: self._stopping.is_set() or cancelled())
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def stop(self, timeout: float = 30) -> None:
        """Cancels the builds in progress and waits (up to `timeout`) until each has removed
        what it made: a build does not outlive the daemon."""
        with self._idle:
            self._stopping.set()
            self._idle.wait_for(lambda: self._active == 0, timeout)

    def _run(self, context: BinaryIO, job: BuildJob, out: BuildOutput,
             cancelled: Cancelled) -> str:
        work = self._opts.work_root
        work.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.TemporaryDirectory(prefix="build-", dir=work) as tmp:
            root = Path(tmp)
            ctx = root / "context"
            ctx.mkdir()
            unpack_context(context, ctx, self._opts.context_limit)
            opts = RunnerOptions(root, self._opts.cgroup_parent, job.host_network,
                                 job.resources)
            runner: StepRunner = PodStepRunner(self._pods, self._containers, self._events, opts)
            if job.keep_containers and self._kept_runner is not None:
                runner = self._kept_runner(opts)
            builder = Builder(self._images, runner, self._cache, root,
                              pull=self._puller(job.auth))
            return builder.build(dataclasses.replace(job.request, context=ctx), out, cancelled)

    def prune(self, everything: bool = False) -> tuple[list[str], int]:
        """Forgets the layer cache and removes the intermediate images it pointed at (those
        without a tag that no container uses); `everything`: also the entries whose image
        is tagged (the image stays). Returns the removed ids and the bytes freed.
        """
        before = self._images.fs_usage().used_bytes
        removed: list[str] = []
        dropped: set[str] = set()
        for key, image_id in self._cache.entries().items():
            record = self._images.status(image_id)
            if record is not None and record.repo_tags:
                if everything:
                    dropped.add(key)
                continue
            dropped.add(key)
            if record is None or record.id in removed:
                continue
            try:
                self._images.remove(record.id)
                removed.append(record.id)
            except ImageInUse:
                continue  # a container runs it: the image stays, uncached
        self._cache.drop(dropped)
        return removed, max(0, before - self._images.fs_usage().used_bytes)

    def _puller(self, auth: dict[str, Credentials]) -> Puller:
        def pull(name: str, progress: Callable[[LayerProgress], None]) -> ImageRecord:
            creds = None
            with contextlib.suppress(InvalidReference):
                ref: Reference = reference_candidates(name, self._opts.short_name_registries)[0]
                # The CLI keys Docker Hub's credentials by its v1 index address.
                creds = auth.get(ref.domain) or (auth.get("index.docker.io")
                                                 if ref.domain == "docker.io" else None)
            return self._images.pull(name, creds, progress)
        return pull

