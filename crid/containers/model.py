"""Domain view of a CRI container request: what spec generation and the lifecycle consume.

The gRPC layer (crid/server/container_convert.py) builds these from protobuf; nothing below it
sees protobuf.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from crid.resources import Resources


class NsMode(Enum):
    POD = "pod"
    CONTAINER = "container"
    NODE = "node"
    TARGET = "target"


class ProfileKind(Enum):
    RUNTIME_DEFAULT = "runtime/default"
    UNCONFINED = "unconfined"
    LOCALHOST = "localhost"


class Propagation(Enum):
    PRIVATE = "rprivate"
    HOST_TO_CONTAINER = "rslave"
    BIDIRECTIONAL = "rshared"


@dataclass(frozen=True)
class Profile:
    kind: ProfileKind = ProfileKind.RUNTIME_DEFAULT
    localhost_ref: str = ""


@dataclass(frozen=True)
class MountRequest:
    container_path: str
    host_path: str
    readonly: bool = False
    propagation: Propagation = Propagation.PRIVATE
    recursive_read_only: bool = False
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeviceRequest:
    container_path: str
    host_path: str
    permissions: str = "rwm"


IdMap = tuple[int, int, int]  # container_id, host_id, length


@dataclass(frozen=True)
class UserNs:
    """A user namespace as asked for: NODE (the host's) or POD with its uid and gid maps."""

    mode: NsMode = NsMode.NODE
    uids: tuple[IdMap, ...] = ()
    gids: tuple[IdMap, ...] = ()


@dataclass(frozen=True)
class Namespaces:
    network: NsMode = NsMode.POD
    pid: NsMode = NsMode.CONTAINER
    ipc: NsMode = NsMode.POD
    target_id: str = ""
    userns: UserNs | None = None  # None: the request did not say (the pod's is joined)


@dataclass(frozen=True)
class Security:
    privileged: bool = False
    caps_add: tuple[str, ...] = ()
    caps_drop: tuple[str, ...] = ()
    caps_ambient: tuple[str, ...] = ()
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_username: str = ""
    readonly_rootfs: bool = False
    supplemental_groups: tuple[int, ...] = ()
    strict_supplemental_groups: bool = False
    no_new_privs: bool = False
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    seccomp: Profile = Profile(ProfileKind.UNCONFINED)
    apparmor: Profile = Profile(ProfileKind.RUNTIME_DEFAULT)
    namespaces: Namespaces = Namespaces()


@dataclass(frozen=True)
class ContainerRequest:
    name: str
    attempt: int
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    working_dir: str = ""
    env: tuple[tuple[str, str], ...] = ()
    mounts: tuple[MountRequest, ...] = ()
    devices: tuple[DeviceRequest, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    log_path: str = ""
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    resources: Resources = Resources()
    security: Security = Security()
    stop_signal: str = ""


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image config (OCI image-spec `config`) that shape a container."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    stop_signal: str = ""

    @classmethod
    def from_oci(cls, config: dict) -> ImageConfig:
        c = config.get("config") or {}
        return cls(entrypoint=tuple(c.get("Entrypoint") or ()), cmd=tuple(c.get("Cmd") or ()),
                   env=tuple(c.get("Env") or ()), working_dir=c.get("WorkingDir") or "",
                   user=c.get("User") or "", stop_signal=c.get("StopSignal") or "")
