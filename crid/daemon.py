"""The crid daemon: owns its root (lock file), wires components, serves gRPC on a unix socket."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import faulthandler
import fcntl
import gc
import os
import re
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent import futures
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from crid import logs
from crid import reload as reloadmod
from crid.api import api_pb2, api_pb2_grpc
from crid.children import end_process, mark, marked_before_us
from crid.config import Config, ConfigError, NetworkConfig, parse_size
from crid.containers import capabilities
from crid.containers.exit_watch import ExitWatchThread
from crid.containers.manager import ContainerManager, ContainerOptions
from crid.containers.pod_adapter import PodManagerLookup
from crid.containers.runtime_adapter import EmbeddedRuntime, RuntimeOptions
from crid.containers.stats import CgroupReader
from crid.docker import DockerDeps, DockerFrontDoor
from crid.docker.tls import TcpOptions, TlsConfigError
from crid.events import EventBus
from crid.images import store_options
from crid.metric_sources import MetricSources
from crid.network import PodNetwork, make_pod_network
from crid.network.factory import options_from_config
from crid.network.named import NamedNetworks
from crid.network.switch import NetworkSwitch
from crid.observability import Observability
from crid.observed_images import ObservedImageStore
from crid.pods import PodManager, PodOptions, SetupDeps, handler_set
from crid.pods.cgroups import RuntimePodCgroups
from crid.pods.namespaces import NamespacePinner
from crid.pods.network import ReadinessCondition
from crid.runtime_info import PodCidrStore
from crid.sd_notify import Notifier
from crid.server.container_rpc import ContainerDeps
from crid.server.errors import status_for
from crid.server.image_service import ImageService, ImageServiceDeps
from crid.server.interceptor import ErrorsAndLogging
from crid.server.runtime_service import RuntimeService, RuntimeServiceDeps, add_to_server
from crid.server.stats_rpc import StatsDeps
from crid.server.streaming_rpc import StreamingDeps
from crid.store import MetadataStore
from crid.streaming.backend import BackendOptions, CridStreamingBackend, DaemonTargets
from crid.streaming.protocol import StreamingOptions, StreamingServer
from crid.traced import TracedNetwork, TracedRuntime
from crid.volumes import VolumeStore
from imagestore import ImageStore, ImageStoreError
from runtime.api import Zygote

log = logs.get("crid.daemon")
GRACE_SECONDS = 10
SIGNAL_POLL_SECONDS = 0.2
MAX_MESSAGE = 16 * 1024 * 1024
PROBE_SECONDS = 30


class StartupError(Exception):
    """The daemon cannot start: its root is owned by another crid, or its socket is in use."""


class RootLock:
    """An exclusive flock on <root>/crid.lock, held for the daemon's lifetime."""

    def __init__(self, root: Path) -> None:
        self.path = root / "crid.lock"
        self._fd = -1

    def acquire(self) -> None:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip()
            os.close(self._fd)
            raise StartupError(f"another crid (pid {holder or '?'}) owns {self.path.parent}") \
                from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def prepare_socket(path: Path) -> None:
    """Creates the socket's directory and removes a stale socket; refuses a live one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() and not path.is_symlink():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError as e:
        if e.errno not in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK):
            raise StartupError(f"checking socket {path}: {e}") from e
        path.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise StartupError(f"socket {path} is served by another process")


class Daemon:
    """One running crid: components, gRPC server, and the lock on its root."""

    def __init__(self, cfg: Config, notifier: Notifier | None = None,
                 loader: Callable[[], Config] | None = None) -> None:
        self.cfg = cfg  # the running configuration (a reload replaces it)
        self._loader = loader or (lambda: cfg)  # reads the files and flags again (SIGHUP)
        self._reload_wanted = threading.Event()
        self._notifier = notifier or Notifier()
        self.root = Path(cfg.root)
        self.run_root = Path(cfg.run_root)
        self.socket_path = Path(cfg.socket_path)
        self._lock = RootLock(self.root)
        self._stopped = threading.Event()
        self._server: grpc.Server | None = None
        self._store: MetadataStore | None = None
        self._images: ImageStore | None = None
        self._zygote: Zygote | None = None
        self._exits: ExitWatchThread | None = None
        self._streaming: StreamingServer | None = None
        self._runtime: EmbeddedRuntime | None = None
        self._docker: DockerFrontDoor | None = None
        self._events = EventBus()
        # Metrics and tracing: empty until start-up binds and applies them, but there from the
        # start, since the components it traces are wrapped as they are built.
        self._observability = Observability(self._events)
        self._stack = contextlib.ExitStack()  # what start() started, undone in reverse

    def start(self) -> None:
        """Takes the root lock, opens state, and starts serving.

        Raises:
            StartupError: another crid owns the root, or the socket is in use.
        """
        try:
            for d in (self.root, self.run_root):
                d.mkdir(parents=True, exist_ok=True, mode=0o711)
            self._lock.acquire()
        except OSError as e:
            raise StartupError(f"preparing {e.filename or self.root}: {e.strerror or e}") from e
        self._stack.callback(self._lock.release)
        try:
            self._store = self._stack.enter_context(
                contextlib.closing(MetadataStore(self.root / "metadata.db")))
            prepare_socket(self.socket_path)
            self._stack.callback(self.socket_path.unlink, missing_ok=True)  # ours from here on
            self._server = self._build_server(self._store)
            # Everything built so far lives as long as the daemon: keep it out of the cyclic
            # collector's passes, which otherwise show up as List* latency spikes.
            gc.collect()
            gc.freeze()
            if not self._server.add_insecure_port(f"unix://{self.socket_path}"):
                raise StartupError(f"cannot listen on {self.socket_path}")
            self._server.start()
            self._stack.callback(lambda s: s.stop(GRACE_SECONDS).wait(), self._server)
            os.chmod(self.socket_path, 0o660)
            if self._docker is not None:
                prepare_socket(Path(self.cfg.docker_socket_path))
                self._docker.start()
                self._stack.callback(self._docker.stop)
        except BaseException:
            self._teardown()  # whatever started stops again, in reverse
            raise
        log.info("serving", socket=str(self.socket_path), root=str(self.root),
                 run_root=str(self.run_root), pid=os.getpid())
        self._announce_ready()

    def _announce_ready(self) -> None:
        """READY=1 to systemd once both CRI services answer on the socket (the kubelet,
        ordered after this unit, calls them first thing), then the watchdog."""
        try:
            self._probe(images=True)
        except grpc.RpcError as e:
            self.stop()
            raise StartupError(f"serving on {self.socket_path}, but it does not answer: "
                               f"{e.code().name} {e.details()}") from None
        self._notifier.notify("READY=1", f"STATUS=serving on unix://{self.socket_path}",
                              f"MAINPID={os.getpid()}")
        self._notifier.start_watchdog(self._stopped, self._answers)

    def _probe(self, images: bool) -> None:
        with grpc.insecure_channel(f"unix://{self.socket_path}") as channel:
            api_pb2_grpc.RuntimeServiceStub(channel).Version(
                api_pb2.VersionRequest(), timeout=PROBE_SECONDS)
            if images:
                api_pb2_grpc.ImageServiceStub(channel).ImageFsInfo(
                    api_pb2.ImageFsInfoRequest(), timeout=PROBE_SECONDS)

    def _answers(self) -> bool:
        try:
            self._probe(images=False)
        except grpc.RpcError:
            return False
        return True

    def _build_server(self, store: MetadataStore) -> grpc.Server:
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=64, thread_name_prefix="rpc"),
            interceptors=[ErrorsAndLogging(self._observers)],
            options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                     ("grpc.max_send_message_length", MAX_MESSAGE)])
        pod_cidrs = PodCidrStore(store)
        network = TracedNetwork(self._build_pod_network(pod_cidrs), self._observability.span)
        containers: list[ContainerManager] = []  # bound below: images ask who uses them
        self._images = ObservedImageStore(
            store_options(self.cfg.images, self.root / "images"),
            in_use=lambda: containers[0].image_ids_in_use() if containers else (),
            span=self._observability.span, finished=self._observability.pull_finished,
            code_of=lambda e: status_for(e).name)
        self._stack.callback(self._images.close)
        self._stack.callback(self._events.close)  # after the exit watcher's last event
        pods = self._build_pods(store, network)
        containers.append(self._build_containers(store, pods))
        streaming = self._build_streaming(containers[0], pods)
        self._start_observability(containers[0], pods)
        if self.cfg.docker.enable:
            self._docker = self._build_docker(containers[0], pods)
        runtime = RuntimeService(RuntimeServiceDeps(
            config=lambda: self.cfg, network=ReadinessCondition(network), pod_cidrs=pod_cidrs,
            pods=pods, pod_network=network,
            containers=ContainerDeps(containers[0], pods, self._events),
            stats=StatsDeps(containers[0], pods, CgroupReader()), streaming=streaming))
        images = ImageService(ImageServiceDeps(
            store=self._images, containers_dir=self.root / "containers"))
        add_to_server(runtime, server)
        api_pb2_grpc.add_ImageServiceServicer_to_server(images, server)
        health_servicer = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
        services = [api_pb2.DESCRIPTOR.services_by_name[n].full_name
                    for n in ("RuntimeService", "ImageService")]
        for name in ["", *services]:
            health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
        reflection.enable_server_reflection(
            [*services, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
        return server

    def _observers(self) -> tuple:
        return self._observability.observers()

    def _start_observability(self, containers: ContainerManager, pods: PodManager) -> None:
        """Metrics (when enabled), serving from now on: their port is bound at start-up, so
        a taken port fails the start as the CRI socket would; tracing (when enabled)."""
        assert self._streaming is not None
        streaming = self._streaming
        sources = MetricSources(
            container_states=lambda: [r.state.name.lower() for r in containers.list()],
            pod_states=lambda: [p.state.name.lower() for p in pods.list_pods()],
            streaming_sessions=lambda: streaming.open_sessions)
        obs = self._observability
        obs.bind(sources)
        self._stack.callback(obs.close)
        try:
            if obs.apply_metrics(self.cfg.metrics):
                log.info("serving metrics", url=obs.metrics_url)
        except OSError as e:
            raise StartupError(f"metrics on {self.cfg.metrics.listen}: {e.strerror or e}") \
                from e
        if obs.apply_tracing(self.cfg.tracing):
            log.info("exporting traces", endpoint=self.cfg.tracing.endpoint,
                     sampling_rate=self.cfg.tracing.sampling_rate)

    def _build_pod_network(self, pod_cidrs: PodCidrStore) -> PodNetwork:
        opts = options_from_config(self.cfg.network, str(self.root))
        # Daemons with a bridge of their own (tests, a second crid) get an nft table of
        # their own too: each rewrites its whole table from its own leases.
        if opts.bridge != NetworkConfig().bridge:
            table = re.sub(r"[^A-Za-z0-9_]", "_", opts.bridge)
            opts = dataclasses.replace(opts, nft_table=f"crid_{table}")
        network = make_pod_network(opts)
        if pod_cidrs.get():
            network.update_pod_cidr(",".join(pod_cidrs.get()))
        # Docker's user-defined networks: loaded (bridges, NAT, DNS) before the pods'
        # reconciliation, which releases what removed pods left on them too.
        self._named = NamedNetworks(self.root / "networks", opts)
        self._named.start()
        self._stack.callback(self._named.stop)
        return NetworkSwitch(network, self._named)

    def _build_pods(self, store: MetadataStore, network: PodNetwork) -> PodManager:
        cfg = self.cfg
        pods = PodManager(
            PodOptions(run_root=self.run_root,
                       handlers=handler_set(cfg.default_runtime_handler,
                                            cfg.pods.runtime_handlers),
                       default_handler=cfg.default_runtime_handler),
            store,
            SetupDeps(pinner=NamespacePinner(), network=network, cgroups=RuntimePodCgroups(),
                      run_root=self.run_root, shm_size=parse_size(cfg.pods.shm_size),
                      cgroup_driver=cfg.cgroup_driver))
        for change in pods.reconcile():
            log.info("reconciled pod", change=change)
        return pods

    def _build_containers(self, store: MetadataStore, pods: PodManager) -> ContainerManager:
        """The container manager over the embedded runtime; exits are watched before the
        start-up reconciliation so none is missed in between."""
        self._zygote = Zygote.start(env=mark(self.run_root))
        self._stack.callback(self._zygote.close)
        rt = EmbeddedRuntime(RuntimeOptions(root=self.run_root / "runtime",
                                            exits_dir=self.run_root / "exits"),
                             launcher=self._zygote)
        self._runtime = rt
        self._end_unrecorded_monitors(rt)
        assert self._images is not None
        grantable = capabilities.engine_caps()
        if capabilities.ungranted(grantable):
            log.info("capabilities this engine does not hold cannot be granted to containers "
                     "(privileged, ALL and named adds get the rest)",
                     capabilities=capabilities.ungranted(grantable))
        manager = ContainerManager(
            ContainerOptions(root=self.root / "containers",
                             forbidden_roots=(self.root, self.run_root),
                             volume_root=self.root / "volumes",
                             cgroup_driver=self.cfg.cgroup_driver, grantable_caps=grantable),
            store, TracedRuntime(rt, self._observability.span), self._images,
            PodManagerLookup(pods), self._events)
        self._exits = ExitWatchThread(self.run_root / "exits", manager.mark_exited)
        for change in manager.reconcile():
            log.info("reconciled container", change=change)
        self._exits.start()
        self._stack.callback(self._exits.stop)
        return manager

    def _end_unrecorded_monitors(self, rt: EmbeddedRuntime) -> None:
        """Monitors, set-up children and spares a killed daemon forked but never recorded
        (its zygote marked them all, see crid.children) are ended: no container record
        claims them, so nothing would ever stop them. Their containers' processes are ended
        with the leftovers of those creates (ContainerManager.reconcile). The monitors of
        execs still running in a recorded container are adopted instead
        (runtime.lifecycle.adopt_exec_monitors): the exec'd process runs on in its container
        whatever becomes of its monitor, and only its monitor can serve it (a detached docker
        exec's output, its exit record)."""
        recorded = rt.monitors()
        unrecorded = [p for p in marked_before_us(self.run_root)
                      if not p.pod_id and (p.pid, p.start) not in recorded]
        adopted = rt.rt.adopt_exec_monitors([(p.pid, p.start) for p in unrecorded])
        for p in unrecorded:
            if (p.pid, p.start) in adopted:
                log.info("adopted the monitor of a running exec", pid=p.pid)
                continue
            log.info("ending an unrecorded process", pid=p.pid, comm=p.comm)
            end_process(p)

    def _build_streaming(self, containers: ContainerManager, pods: PodManager) -> StreamingDeps:
        """The exec/attach/port-forward HTTP server, started now (it binds its port) and
        stopped with the daemon."""
        assert self._runtime is not None
        cfg = self.cfg.streaming
        targets = DaemonTargets(containers, self._runtime, pods)
        backend = CridStreamingBackend(BackendOptions(console_dir=self.run_root / "console"),
                                       targets, self._runtime.rt)
        self._streaming = StreamingServer(
            StreamingOptions(address=cfg.address, port=cfg.port, idle_timeout=cfg.idle_timeout,
                             tls_cert=cfg.tls_cert or None, tls_key=cfg.tls_key or None),
            backend)
        self._streaming.start()
        self._stack.callback(self._streaming.stop)  # ends every session: exec'd ones killed
        log.info("streaming server", url=self._streaming.base_url)
        return StreamingDeps(self._streaming, targets)

    def _build_docker(self, containers: ContainerManager, pods: PodManager) -> DockerFrontDoor:
        """The Docker Engine API over the same managers (docs/docker-api.md)."""
        assert self._images is not None and self._runtime is not None
        deps = DockerDeps(pods=pods, containers=containers, images=self._images,
                          events=self._events, runtime=self._runtime,
                          console_dir=self.run_root / "console",
                          state_dir=self.root / "docker", root=self.root,
                          volumes=VolumeStore(self.root / "volumes"), networks=self._named,
                          cgroup_driver=self.cfg.cgroup_driver,
                          cgroup_parent=self.cfg.docker.cgroup_parent,
                          short_names=tuple(self.cfg.images.short_name_registries))
        dc = self.cfg.docker
        tcp = TcpOptions(dc.tcp, dc.tls_cert, dc.tls_key, dc.tls_ca) if dc.tcp else None
        if tcp is not None:
            try:
                tcp.check()
            except TlsConfigError as e:
                raise ConfigError(str(e)) from None
        return DockerFrontDoor(deps, Path(self.cfg.docker_socket_path), self.cfg.docker.group,
                               upload_limit=parse_size(self.cfg.docker.max_upload_size), tcp=tcp)

    def wait(self) -> None:
        """Blocks until stop() (from a signal handler or another thread)."""
        # Python runs signal handlers only in the main thread, between bytecodes. The kernel may
        # deliver SIGTERM to any of the daemon's threads, and then nothing interrupts a main
        # thread blocked in an untimed wait: it would never see the signal. Waking up
        # periodically lets the handler run whichever thread took the signal.
        while not self._stopped.wait(SIGNAL_POLL_SECONDS):
            if self._reload_wanted.is_set():
                self._reload_wanted.clear()
                self.reload()

    def reload(self) -> None:
        """Reads the configuration again and applies what can change at runtime (see
        crid/reload.py); a new configuration that does not load or apply is refused whole,
        with one error line, and the running one stays."""
        self._notifier.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            new = self._loader()
            plan = reloadmod.plan(self.cfg, new)
            self._apply(plan)
        except (ConfigError, ImageStoreError, OSError) as e:
            log.error("configuration reload failed; keeping the running configuration",
                      error=str(e))
        else:
            self.cfg = plan.effective
            log.info("configuration reloaded", changed=list(plan.applied),
                     needs_restart=list(plan.restart))
        finally:
            self._notifier.notify("READY=1", f"STATUS=serving on unix://{self.socket_path}")

    def _apply(self, plan: reloadmod.ReloadPlan) -> None:
        """Images first, then metrics; a metrics address that cannot be bound puts the
        image settings back, so nothing of the new configuration is half applied."""
        new, images, obs = plan.effective, self._images, self._observability
        assert images is not None
        images.reconfigure(store_options(new.images, self.root / "images"))
        try:
            obs.apply_metrics(new.metrics)
        except OSError as e:
            images.reconfigure(store_options(self.cfg.images, self.root / "images"))
            raise OSError(f"metrics on {new.metrics.listen}: {e.strerror or e}") from e
        obs.apply_tracing(new.tracing)
        logs.reconfigure(new.log_level, new.log_format)
        if obs.metrics_url and any(k.startswith("metrics.") for k in plan.applied):
            log.info("serving metrics", url=obs.metrics_url)

    def install_signal_handlers(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stopped.set())
        # SIGHUP reloads the configuration (systemctl reload): in wait(), not in the handler,
        # which may run in the middle of anything the main thread does.
        signal.signal(signal.SIGHUP, lambda *_: self._reload_wanted.set())
        # SIGUSR1 dumps every thread's stack to the log, as Go daemons do on SIGQUIT.
        faulthandler.register(signal.SIGUSR1, all_threads=True)

    def stop(self) -> None:
        """Stops accepting calls, lets in-flight ones finish; containers are left running."""
        if self._stopped.is_set() and self._server is None:
            return  # stopped already (a failed start-up probe, then the caller's finally)
        self._notifier.notify("STOPPING=1")
        self._stopped.set()
        log.info("stopping", grace_seconds=GRACE_SECONDS)
        self._teardown()
        log.info("stopped")

    def _teardown(self) -> None:
        try:
            self._stack.close()
        finally:
            self._server = self._docker = self._streaming = None
            self._exits = self._zygote = self._images = self._store = None
