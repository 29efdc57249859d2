"""Pod sandbox data: the request (PodSpec) and the persisted record (PodSandbox).

Plain frozen dataclasses; `crid/server/pod_convert.py` builds them from protobuf and back.
Port mappings and DNS are the pod network's types (`crid.network.api`), resources the type
containers share (`crid.resources`). A record round-trips through `to_record`/`from_record`
as JSON in the MetadataStore (kind "pod").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from crid.network.api import DNSConfig, PortMapping
from crid.pods.ids import PodId
from crid.pods.state import PodState
from crid.resources import Resources

# NamespaceMode values, named as in the CRI.
POD, CONTAINER, NODE, TARGET = "POD", "CONTAINER", "NODE", "TARGET"
MODES = (POD, CONTAINER, NODE, TARGET)

# Front doors a pod belongs to: the CRI lists only its own; the Docker API's one-container pods
# live apart (the kubelet kills every running pod the runtime reports that it does not know).
CRI, DOCKER = "cri", "docker"


@dataclass(frozen=True)
class Metadata:
    name: str
    uid: str
    namespace: str
    attempt: int = 0

    @property
    def reservation(self) -> str:
        """The reserved name, in the kubelet's k8s_POD_<name>_<ns>_<uid>_<attempt> form."""
        return f"k8s_POD_{self.name}_{self.namespace}_{self.uid}_{self.attempt}"


@dataclass(frozen=True)
class IdMapping:
    """One line of a uid_map/gid_map: `length` ids from container_id map to host_id on."""

    container_id: int
    host_id: int
    length: int


@dataclass(frozen=True)
class UserNamespace:
    """A user namespace the pod asked for (hostUsers: false): its mode (only POD is run) and
    how its uids and gids map to the host's."""

    mode: str = POD
    uids: tuple[IdMapping, ...] = ()
    gids: tuple[IdMapping, ...] = ()

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> UserNamespace:
        return cls(rec["mode"], tuple(IdMapping(**m) for m in rec["uids"]),
                   tuple(IdMapping(**m) for m in rec["gids"]))


@dataclass(frozen=True)
class NamespaceOptions:
    """Which namespaces the pod shares: POD (one per pod), CONTAINER, NODE (the host's).
    ``userns`` None is the host's user namespace (NamespaceMode NODE)."""

    network: str = POD
    pid: str = CONTAINER
    ipc: str = POD
    target_id: str = ""
    userns: UserNamespace | None = None

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> NamespaceOptions:
        userns = rec.get("userns")  # absent in records from before user namespaces
        return cls(rec["network"], rec["pid"], rec["ipc"], rec["target_id"],
                   UserNamespace.from_record(userns) if userns else None)


@dataclass(frozen=True)
class PodSpec:
    """What RunPodSandbox asks for, already converted from protobuf (not yet validated)."""

    metadata: Metadata
    runtime_handler: str = ""
    hostname: str = ""
    log_directory: str = ""
    dns: DNSConfig | None = None
    port_mappings: tuple[PortMapping, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    cgroup_parent: str = ""
    namespaces: NamespaceOptions = NamespaceOptions()
    sysctls: dict[str, str] = field(default_factory=dict)
    overhead: Resources | None = None
    resources: Resources | None = None
    privileged: bool = False
    front_door: str = CRI
    attach_network: bool = True  # False: its own netns with loopback only (Docker's "none")
    network: str = ""  # a user-defined network's id (Docker's --network NAME); "" = default

    @property
    def host_network(self) -> bool:
        return self.namespaces.network == NODE

    @property
    def userns(self) -> UserNamespace | None:
        """The pod's own user namespace, None for the host's."""
        return self.namespaces.userns


@dataclass(frozen=True)
class Infra:
    """The pod's pid-1 reaper (only when the pod shares one PID namespace)."""

    pid: int
    start_time: int  # /proc/<pid>/stat field 22: tells a live process from a reused pid


@dataclass(frozen=True)
class PodSandbox:
    """A pod sandbox as recorded: the spec plus what running it produced."""

    id: PodId
    spec: PodSpec
    state: PodState
    created_at: int  # ns since the epoch
    ips: tuple[str, ...] = ()
    infra: Infra | None = None
    cgroup: str = ""  # the pod cgroup's path under each hierarchy, "" when none

    def with_state(self, state: PodState) -> PodSandbox:
        return dataclasses.replace(self, state=state)

    def to_record(self) -> dict[str, Any]:
        rec = dataclasses.asdict(self)
        rec["id"] = self.id.value
        rec["state"] = self.state.value
        return rec

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> PodSandbox:
        s = rec["spec"]
        spec = PodSpec(
            metadata=Metadata(**s["metadata"]),
            runtime_handler=s["runtime_handler"], hostname=s["hostname"],
            log_directory=s["log_directory"],
            dns=_tuples(DNSConfig, s["dns"]) if s["dns"] else None,
            port_mappings=tuple(PortMapping(**p) for p in s["port_mappings"]),
            labels=s["labels"], annotations=s["annotations"], cgroup_parent=s["cgroup_parent"],
            namespaces=NamespaceOptions.from_record(s["namespaces"]), sysctls=s["sysctls"],
            overhead=Resources.from_record(s["overhead"]) if s["overhead"] else None,
            resources=Resources.from_record(s["resources"]) if s["resources"] else None,
            privileged=s["privileged"], front_door=s.get("front_door", CRI),
            attach_network=s.get("attach_network", True), network=s.get("network", ""))
        return cls(id=PodId(rec["id"]), spec=spec, state=PodState(rec["state"]),
                   created_at=rec["created_at"], ips=tuple(rec["ips"]),
                   infra=Infra(**rec["infra"]) if rec["infra"] else None, cgroup=rec["cgroup"])


def _tuples(cls: type, data: dict[str, Any]) -> Any:
    return cls(**{k: tuple(v) for k, v in data.items()})
