"""Docker Engine API benchmarks (issue 16), through Debian's docker CLI: crid's docker.sock
against Debian's dockerd in the same run.

This benchmark's peer is dockerd, not containerd: in the runner's containerd pass it starts
its own dockerd (tests.bench.dockerd) and measures that, so the table's containerd column and
the crid/containerd ratio read as dockerd and crid/dockerd here. Figures: `docker run --rm
<busybox> true` and `docker ps -a` with PS_CONTAINERS stopped containers present, sequential,
and EXEC_SESSIONS concurrent `docker exec`s; wall time of each CLI process.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.bench.api import BenchContext, benchmark, latency_figures
from tests.bench.dockerd import DOCKER_CLI, running_dockerd
from tests.rig import catalog
from tests.rig.cri_client import CriClient
from tests.rig.distribution import DistributionClient
from tests.rig.images import push

BUSYBOX_REPO = "crt-rig/docker-busybox"
PS_CONTAINERS = 10
EXEC_SESSIONS = 20


def _checked(argv: list[str], env: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr}")
    return proc


def _cli(sock: Path, *args: str, env: dict[str, str] | None = None,
         timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return _checked([DOCKER_CLI, "-H", f"unix://{sock}", *args], env, timeout)


def _timed(sock: Path, *args: str, env: dict[str, str] | None = None,
           timeout: float = 120) -> float:
    started = time.perf_counter()
    _cli(sock, *args, env=env, timeout=timeout)
    return time.perf_counter() - started


@contextlib.contextmanager
def _docker_socket(client: CriClient, ctx: BenchContext) -> Iterator[Path]:
    if ctx.runtime == "crid":
        yield client.socket.parent / "docker.sock"  # <run-root>/docker.sock beside crid.sock
        return
    with running_dockerd() as dockerd:
        yield dockerd.socket


@benchmark("docker_cli")
def docker_cli(client: CriClient, ctx: BenchContext) -> dict[str, float]:
    """docker run --rm busybox true and docker ps -a through the docker CLI (peer: dockerd)."""
    ref = ctx.once("docker-busybox", lambda: (
        push(DistributionClient(ctx.registry), BUSYBOX_REPO, catalog.busybox_image(),
             tag="1.0"), ctx.registry.ref(BUSYBOX_REPO, "1.0"))[1])
    runs, lists = (5, 5) if ctx.quick else (20, 20)
    with _docker_socket(client, ctx) as sock:
        pull_s = _timed(sock, "pull", "-q", ref)
        _cli(sock, "run", "--rm", ref, "true")  # warm: first container of the daemon
        run = [_timed(sock, "run", "--rm", ref, "true") for _ in range(runs)]
        names = [f"crt-bench-ps-{i}" for i in range(PS_CONTAINERS)]
        for name in names:
            _cli(sock, "create", "--name", name, ref, "true")
        try:
            _cli(sock, "ps", "-a")
            ps = [_timed(sock, "ps", "-a") for _ in range(lists)]
        finally:
            _cli(sock, "rm", "-f", *names)
        execs = _concurrent_execs(sock, ref, EXEC_SESSIONS)
        _cli(sock, "rmi", ref)
    return {"pull_busybox_s": pull_s, **latency_figures("run_rm_true", run),
            **latency_figures("ps_a_10", ps), **latency_figures("exec_20_concurrent", execs)}


def _concurrent_execs(sock: Path, ref: str, count: int) -> list[float]:
    """`count` `docker exec <c> true` started at once; each one's wall time. Raises if any
    fails (every session must complete)."""
    name = "crt-bench-exec"
    _cli(sock, "run", "-d", "--name", name, ref, "sleep", "600")
    try:
        _cli(sock, "exec", name, "true")  # warm
        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            return list(pool.map(lambda _: _timed(sock, "exec", name, "true"), range(count)))
    finally:
        _cli(sock, "rm", "-f", name)


BUILD_DOCKERFILE = """\
FROM {base}
RUN echo built > /built && mkdir -p /app
COPY hello.txt /app/hello.txt
CMD ["cat", "/app/hello.txt"]
"""
COMMIT_MB = 50


def _build_s(sock: Path, ctx: Path, *args: str) -> float:
    return _timed(sock, "build", "-q", *args, str(ctx), timeout=300,
                  env={"PATH": "/usr/bin:/bin", "DOCKER_BUILDKIT": "0"})


@benchmark("docker_build")
def docker_build(client: CriClient, ctx: BenchContext) -> dict[str, float]:
    """The classic builder through the docker CLI (DOCKER_BUILDKIT=0; peer: dockerd): a
    3-step Dockerfile (RUN, COPY, CMD on a present busybox) built with --no-cache, the same
    rebuilt from the cache, and `docker commit` of a container with a 50 MB change."""
    ref = ctx.once("docker-busybox", lambda: (
        push(DistributionClient(ctx.registry), BUSYBOX_REPO, catalog.busybox_image(),
             tag="1.0"), ctx.registry.ref(BUSYBOX_REPO, "1.0"))[1])
    rounds = 3 if ctx.quick else 10
    with tempfile.TemporaryDirectory(prefix="crt-bench-build-") as tmp, \
            _docker_socket(client, ctx) as sock:
        build_ctx = Path(tmp)
        (build_ctx / "Dockerfile").write_text(BUILD_DOCKERFILE.format(base=ref))
        (build_ctx / "hello.txt").write_text("hello\n")
        _cli(sock, "pull", "-q", ref)
        tag = "crt-bench-build:1"
        _build_s(sock, build_ctx, "-t", tag)  # warm: the daemon's first build
        cold = [_build_s(sock, build_ctx, "--no-cache", "-t", tag) for _ in range(rounds)]
        cached = [_build_s(sock, build_ctx, "-t", tag) for _ in range(rounds)]
        commits = _commits(sock, ref, max(2, rounds // 2))
        _cli(sock, "rmi", "-f", tag)
        with contextlib.suppress(RuntimeError):  # dangling intermediate images of the builds
            _cli(sock, "image", "prune", "-f")
        _cli(sock, "rmi", ref)
    return {**latency_figures("build_3_steps_no_cache", cold),
            **latency_figures("build_3_steps_cached", cached),
            **latency_figures(f"commit_{COMMIT_MB}mb", commits)}


def _commits(sock: Path, ref: str, count: int) -> list[float]:
    name = "crt-bench-commit"
    # the rig's busybox has few applets: busybox dd itself
    _cli(sock, "run", "--name", name, ref, "busybox", "dd", "if=/dev/urandom", "of=/big",
         "bs=1M", f"count={COMMIT_MB}")
    try:
        out = []
        for i in range(count):
            out.append(_timed(sock, "commit", name, f"crt-bench-commit:{i}"))
            _cli(sock, "rmi", f"crt-bench-commit:{i}")
        return out
    finally:
        _cli(sock, "rm", "-f", name)


COMPOSE = "/usr/bin/docker-compose"
COMPOSE_PROJECT = """\
version: "3.8"
services:
  web:
    image: {image}
    command: ["busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
    volumes: ["site:/www"]
  client:
    image: {image}
    depends_on: [web]
    command: ["sleep", "600"]
    volumes: ["site:/www"]
volumes:
  site: {{}}
networks:
  default:
    ipam:
      config: [{{subnet: "{subnet}"}}]
"""


def _compose_s(sock: Path, project: Path, *args: str) -> float:
    started = time.perf_counter()
    _checked([COMPOSE, "--no-ansi", "-p", "crtbench", "-f", str(project), *args],
             {"PATH": "/usr/bin:/bin", "DOCKER_HOST": f"unix://{sock}"}, timeout=300)
    return time.perf_counter() - started


@benchmark("docker_compose")
def docker_compose(client: CriClient, ctx: BenchContext) -> dict[str, float]:
    """Debian's docker-compose (peer: dockerd): `up -d` of a two-service project (a project
    network, a named volume, depends_on) until both services run, and `down -v -t 0`."""
    ref = ctx.once("docker-busybox", lambda: (
        push(DistributionClient(ctx.registry), BUSYBOX_REPO, catalog.busybox_image(),
             tag="1.0"), ctx.registry.ref(BUSYBOX_REPO, "1.0"))[1])
    rounds = 3 if ctx.quick else 10
    subnet = f"10.238.{secrets.randbelow(250)}.0/24"  # not the shared pools other runs pick
    with tempfile.TemporaryDirectory(prefix="crt-bench-compose-") as tmp, \
            _docker_socket(client, ctx) as sock:
        project = Path(tmp) / "docker-compose.yml"
        project.write_text(COMPOSE_PROJECT.format(image=ref, subnet=subnet))
        _cli(sock, "pull", "-q", ref)
        ups, downs = [], []
        try:
            for _ in range(rounds):
                ups.append(_compose_s(sock, project, "up", "-d"))
                downs.append(_compose_s(sock, project, "down", "-v", "-t", "0"))
        finally:
            with contextlib.suppress(RuntimeError):
                _compose_s(sock, project, "down", "-v")
        _cli(sock, "rmi", ref)
    return {**latency_figures("compose_up_2_services", ups),
            **latency_figures("compose_down_v", downs)}
