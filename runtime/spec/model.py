"""Typed, frozen view of an OCI runtime-spec 1.2 ``config.json`` (Linux parts).

Built only by ``runtime.spec.load``; every value here has been validated. ``linux.resources`` and
``linux.seccomp`` stay raw dicts: the cgroup and seccomp packages parse them.
"""

from __future__ import annotations

from typing import Any

from runtime.records import dataclass, field


@dataclass(frozen=True)
class ConsoleSize:
    height: int
    width: int


@dataclass(frozen=True)
class User:
    uid: int = 0
    gid: int = 0
    umask: int | None = None
    additional_gids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Capabilities:
    """Capability sets as canonical names ("CAP_CHOWN"); None means the set is not given."""

    bounding: tuple[str, ...] = ()
    effective: tuple[str, ...] = ()
    inheritable: tuple[str, ...] = ()
    permitted: tuple[str, ...] = ()
    ambient: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rlimit:
    type: str  # "RLIMIT_NOFILE"
    soft: int
    hard: int


@dataclass(frozen=True)
class IOPriority:
    io_class: str  # IOPRIO_CLASS_RT | IOPRIO_CLASS_BE | IOPRIO_CLASS_IDLE
    priority: int = 0


@dataclass(frozen=True)
class Scheduler:
    policy: str  # SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE
    nice: int = 0
    priority: int = 0


@dataclass(frozen=True)
class CPUAffinity:
    """execCPUAffinity: CPU sets for the runtime's part ("initial") and after exec ("final")."""

    initial: tuple[int, ...] = ()
    final: tuple[int, ...] = ()


@dataclass(frozen=True)
class Process:
    args: tuple[str, ...]
    cwd: str
    env: tuple[str, ...] = ()
    terminal: bool = False
    console_size: ConsoleSize | None = None
    user: User = field(default_factory=User)
    capabilities: Capabilities | None = None
    rlimits: tuple[Rlimit, ...] = ()
    no_new_privileges: bool = False
    apparmor_profile: str = ""
    oom_score_adj: int | None = None
    selinux_label: str = ""
    io_priority: IOPriority | None = None
    scheduler: Scheduler | None = None
    exec_cpu_affinity: CPUAffinity | None = None


@dataclass(frozen=True)
class Root:
    path: str
    readonly: bool = False


@dataclass(frozen=True)
class IDMapping:
    container_id: int
    host_id: int
    size: int


@dataclass(frozen=True)
class Mount:
    destination: str
    type: str = ""
    source: str = ""
    options: tuple[str, ...] = ()
    uid_mappings: tuple[IDMapping, ...] = ()
    gid_mappings: tuple[IDMapping, ...] = ()


@dataclass(frozen=True)
class Hook:
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None  # seconds


@dataclass(frozen=True)
class Hooks:
    prestart: tuple[Hook, ...] = ()
    create_runtime: tuple[Hook, ...] = ()
    create_container: tuple[Hook, ...] = ()
    start_container: tuple[Hook, ...] = ()
    poststart: tuple[Hook, ...] = ()
    poststop: tuple[Hook, ...] = ()


@dataclass(frozen=True)
class Namespace:
    type: str  # pid network mount ipc uts user cgroup time
    path: str = ""


@dataclass(frozen=True)
class Device:
    type: str  # c b u p
    path: str
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@dataclass(frozen=True)
class Personality:
    domain: str  # LINUX | LINUX32
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Linux:
    namespaces: tuple[Namespace, ...] = ()
    uid_mappings: tuple[IDMapping, ...] = ()
    gid_mappings: tuple[IDMapping, ...] = ()
    devices: tuple[Device, ...] = ()
    cgroups_path: str = ""
    resources: dict[str, Any] | None = None
    seccomp: dict[str, Any] | None = None
    sysctl: tuple[tuple[str, str], ...] = ()
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    rootfs_propagation: str = ""
    mount_label: str = ""
    personality: Personality | None = None
    time_offsets: tuple[tuple[str, int, int], ...] = ()  # (clock, secs, nanosecs)

    def namespace(self, ns_type: str) -> Namespace | None:
        """The namespace entry of that type, or None when the container shares the runtime's."""
        for ns in self.namespaces:
            if ns.type == ns_type:
                return ns
        return None


@dataclass(frozen=True)
class Spec:
    oci_version: str
    root: Root
    process: Process | None = None
    hostname: str = ""
    domainname: str = ""
    mounts: tuple[Mount, ...] = ()
    hooks: Hooks = field(default_factory=Hooks)
    annotations: dict[str, str] = field(default_factory=dict)
    linux: Linux = field(default_factory=Linux)


@dataclass(frozen=True)
class Config:
    """A validated config.json: its typed ``spec`` and the bytes it was read from (``raw``).

    Parsed once, where the caller has the document (crid builds it; the CLI reads the
    bundle's), and handed down as such through ``Runtime.create`` to the container's init;
    ``raw`` is what the state directory's config.json holds, for OCI tools, never parsed again
    on the way.
    """

    spec: Spec
    raw: bytes
