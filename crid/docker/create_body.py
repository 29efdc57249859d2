"""POST /containers/create's body, checked field by field before anything is made.

The result, `CreateBody`, keeps the fields crid honours, normalised; it is stored with the
Docker-side pod (so inspect shows it and a restart re-creates the container from it) and
converted to the domain's PodSpec and ContainerRequest by `crid.docker.specs`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from crid.docker.errors import BadRequest
from crid.errors import InvalidArgument
from crid.volumes import check_volume_name

_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
_NETWORK = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
_PORT = re.compile(r"^(\d{1,5})(?:/(tcp|udp|sctp))?$")
RESTART_POLICIES = ("", "no", "always", "on-failure", "unless-stopped")
NETWORK_MODES = ("", "default", "bridge", "host", "none")
BUILTIN_NETWORKS = ("bridge", "host", "none")


@dataclass(frozen=True)
class BindMount:
    source: str
    target: str
    readonly: bool = False


@dataclass(frozen=True)
class VolumeMount:
    """A volume over `target`: named, or anonymous (name "" until create gives it one)."""

    name: str
    target: str
    readonly: bool = False
    nocopy: bool = False  # no copy-up of the image's content
    anonymous: bool = False


@dataclass(frozen=True)
class PortBinding:
    container_port: int
    protocol: str  # tcp, udp, sctp
    host_ip: str
    host_port: int  # 0: any free port (HostPort "" or "0"), chosen at create
    host_port_end: int = 0  # HostPort "a-b": the first free port of a..b, chosen at create


@dataclass(frozen=True)
class CreateBody:
    image: str
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    env: list[str] = field(default_factory=list)
    working_dir: str = ""
    user: str = ""
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    exposed_ports: list[str] = field(default_factory=list)
    hostname: str = ""
    stop_signal: str = ""
    stop_timeout: int | None = None
    binds: list[BindMount] = field(default_factory=list)
    volumes: list[VolumeMount] = field(default_factory=list)
    port_bindings: list[PortBinding] = field(default_factory=list)
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    memory: int = 0
    nano_cpus: int = 0
    cpu_shares: int = 0
    network_mode: str = "bridge"  # bridge, host, none, or a user-defined network's name
    network_id: str = ""  # that user-defined network's id (resolved at create)
    aliases: list[str] = field(default_factory=list)  # on that network (--network-alias)
    dns: list[str] = field(default_factory=list)
    extra_hosts: list[str] = field(default_factory=list)
    auto_remove: bool = False
    restart_policy: str = "no"
    restart_max: int = 0
    readonly_rootfs: bool = False
    publish_all: bool = False  # -P: every exposed port (the image's too) gets a free host port

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> CreateBody:
        rec = dict(rec)
        rec["binds"] = [BindMount(**b) for b in rec.get("binds", [])]
        rec["volumes"] = [VolumeMount(**v) for v in rec.get("volumes", [])]
        rec["port_bindings"] = [PortBinding(**p) for p in rec.get("port_bindings", [])]
        return cls(**rec)


def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise BadRequest(f"{where}{key}: wrong type {type(value).__name__}")
    return value


def _strings(obj: dict[str, Any], key: str, where: str) -> list[str] | None:
    value = _get(obj, key, (list, str), where)
    if isinstance(value, str):
        return [value]
    if value is not None and not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{where}{key}: must be a list of strings")
    return value


def _str_map(obj: dict[str, Any], key: str, where: str) -> dict[str, str]:
    value = _get(obj, key, dict, where) or {}
    if not all(isinstance(v, str) for v in value.values()):
        raise BadRequest(f"{where}{key}: values must be strings")
    return value


def check_name(name: str) -> str:
    """A container name without its leading slash.

    Raises:
        BadRequest: not Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
    """
    if not _NAME.match(name):
        raise BadRequest(f"Invalid container name ({name[:140]}), only [a-zA-Z0-9][a-zA-Z0-9_.-]"
                         " are allowed")
    return name.lstrip("/")


def parse_create(body: Any) -> CreateBody:
    """The checked body.

    Raises:
        BadRequest: a field of the wrong type or value (nothing has been made yet).
    """
    if not isinstance(body, dict):
        raise BadRequest("container config must be a JSON object")
    image = _get(body, "Image", str, "")
    if not image:
        raise BadRequest("config: Image is required")
    host = _get(body, "HostConfig", dict, "") or {}
    hc = "HostConfig."
    restart = _get(host, "RestartPolicy", dict, hc) or {}
    policy = _get(restart, "Name", str, hc + "RestartPolicy.") or "no"
    if policy not in RESTART_POLICIES:
        raise BadRequest(f"invalid restart policy {policy[:40]!r}")
    auto_remove = bool(_get(host, "AutoRemove", bool, hc))
    if auto_remove and policy not in ("", "no"):
        raise BadRequest("can't create 'AutoRemove' container with restart policy")
    network = _get(host, "NetworkMode", str, hc) or "bridge"
    if network not in NETWORK_MODES and not _NETWORK.match(network):
        raise BadRequest(f"invalid network mode {network[:60]!r} (bridge, host, none or the "
                         "name of a network; container:<id> is not served)")
    return CreateBody(
        image=image, cmd=_strings(body, "Cmd", ""), entrypoint=_strings(body, "Entrypoint", ""),
        env=_env(_strings(body, "Env", "") or []),
        working_dir=_get(body, "WorkingDir", str, "") or "",
        user=_get(body, "User", str, "") or "", tty=bool(_get(body, "Tty", bool, "")),
        open_stdin=bool(_get(body, "OpenStdin", bool, "")),
        stdin_once=bool(_get(body, "StdinOnce", bool, "")),
        labels=_str_map(body, "Labels", ""),
        exposed_ports=sorted(_get(body, "ExposedPorts", dict, "") or {}),
        hostname=_get(body, "Hostname", str, "") or "",
        stop_signal=_get(body, "StopSignal", str, "") or "",
        stop_timeout=_get(body, "StopTimeout", int, ""),
        binds=_binds(host), volumes=_volumes(body, host), port_bindings=_port_bindings(host),
        privileged=bool(_get(host, "Privileged", bool, hc)),
        cap_add=_strings(host, "CapAdd", hc) or [], cap_drop=_strings(host, "CapDrop", hc) or [],
        memory=_non_negative(host, "Memory"), nano_cpus=_non_negative(host, "NanoCpus"),
        cpu_shares=_non_negative(host, "CpuShares"),
        network_mode=network if network not in ("", "default") else "bridge",
        aliases=_aliases(body, network),
        dns=_strings(host, "Dns", hc) or [], extra_hosts=_extra_hosts(host),
        auto_remove=auto_remove, restart_policy=policy if policy else "no",
        restart_max=_non_negative(restart, "MaximumRetryCount"),
        readonly_rootfs=bool(_get(host, "ReadonlyRootfs", bool, hc)),
        publish_all=bool(_get(host, "PublishAllPorts", bool, hc)))


def _aliases(body: dict[str, Any], network: str) -> list[str]:
    """NetworkingConfig.EndpointsConfig[network].Aliases (the CLI's --network-alias)."""
    cfg = _get(body, "NetworkingConfig", dict, "") or {}
    endpoints = _get(cfg, "EndpointsConfig", dict, "NetworkingConfig.") or {}
    for name, ep in endpoints.items():
        if not isinstance(ep, dict):
            raise BadRequest(f"NetworkingConfig.EndpointsConfig.{name[:60]}: must be an object")
    ep = endpoints.get(network) or {}
    aliases = _strings(ep, "Aliases", "EndpointsConfig.") or []
    for a in aliases:
        if not _NETWORK.match(a):
            raise BadRequest(f"invalid network alias {a[:60]!r}")
    return aliases


def _non_negative(obj: dict[str, Any], key: str) -> int:
    value = _get(obj, key, int, "HostConfig.") or 0
    if value < 0:
        raise BadRequest(f"HostConfig.{key}: must not be negative")
    return value


def _env(env: list[str]) -> list[str]:
    for item in env:
        if not item or item.startswith("=") or "\0" in item:
            raise BadRequest(f"invalid environment variable {item[:60]!r}")
    return env


def _binds(host: dict[str, Any]) -> list[BindMount]:
    out = []
    for spec in _strings(host, "Binds", "HostConfig.") or []:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[0]:
            raise BadRequest(f"invalid bind {spec[:200]!r}: want /host/path:/container/path"
                             "[:ro] or volume:/container/path[:ro]")
        if not parts[0].startswith("/"):
            continue  # a named volume (_volumes)
        opts = parts[2].split(",") if len(parts) == 3 else []
        if set(opts) - {"ro", "rw", "z", "Z", "rprivate", "private"}:
            raise BadRequest(f"invalid bind {spec[:200]!r}: unsupported options")
        out.append(BindMount(parts[0], parts[1], "ro" in opts))
    for m in _get(host, "Mounts", list, "HostConfig.") or []:
        if not isinstance(m, dict):
            raise BadRequest("HostConfig.Mounts: each mount must be an object")
        kind = _get(m, "Type", str, "Mounts.") or "volume"
        if kind == "volume":
            continue  # _volumes
        if kind != "bind":
            raise BadRequest(f"mount type {kind[:20]!r} is not served yet (bind and volume)")
        source, target = _get(m, "Source", str, "Mounts."), _get(m, "Target", str, "Mounts.")
        if not source or not target:
            raise BadRequest("Mounts: Source and Target are required")
        out.append(BindMount(source, target, bool(_get(m, "ReadOnly", bool, "Mounts."))))
    for b in out:
        if not b.target.startswith("/") or not b.source.startswith("/"):
            raise BadRequest(f"mount {b.target[:200]!r}: paths must be absolute")
    return out


def _volumes(body: dict[str, Any], host: dict[str, Any]) -> list[VolumeMount]:
    """Named volumes of Binds (`name:/path[:ro,nocopy]`), volume Mounts, and the anonymous
    volumes of Config.Volumes (`docker run -v /path`)."""
    out = []
    for spec in _strings(host, "Binds", "HostConfig.") or []:
        parts = spec.split(":")
        if parts[0].startswith("/"):
            continue  # a bind (_binds)
        opts = parts[2].split(",") if len(parts) == 3 else []
        if set(opts) - {"ro", "rw", "z", "Z", "nocopy", "rprivate", "private"}:
            raise BadRequest(f"invalid volume {spec[:200]!r}: unsupported options")
        out.append(VolumeMount(_volume_name(parts[0]), parts[1], "ro" in opts,
                               "nocopy" in opts))
    for m in _get(host, "Mounts", list, "HostConfig.") or []:
        if (_get(m, "Type", str, "Mounts.") or "volume") == "volume":
            out.append(_volume_mount(m))
    taken = {v.target for v in out} | {b.target for b in _binds(host)}
    for path in sorted(_get(body, "Volumes", dict, "") or {}):
        if path not in taken:
            out.append(VolumeMount("", path, anonymous=True))
    for v in out:
        if not v.target.startswith("/") or v.target == "/":
            raise BadRequest(f"invalid mount config: mount path {v.target[:200]!r} must be "
                             "absolute and not /")
    if len({v.target for v in out}) != len(out):
        raise BadRequest("Duplicate mount point: two volumes on one path")
    return out


def _volume_mount(m: dict[str, Any]) -> VolumeMount:
    target = _get(m, "Target", str, "Mounts.")
    if not target:
        raise BadRequest("Mounts: Target is required")
    opts = _get(m, "VolumeOptions", dict, "Mounts.") or {}
    driver = _get(opts, "DriverConfig", dict, "Mounts.VolumeOptions.") or {}
    if (_get(driver, "Name", str, "DriverConfig.") or "local") != "local" or \
            _get(driver, "Options", dict, "DriverConfig."):
        raise BadRequest("Mounts: only the local volume driver without options is served")
    source = _get(m, "Source", str, "Mounts.") or ""
    return VolumeMount(_volume_name(source) if source else "", target,
                       bool(_get(m, "ReadOnly", bool, "Mounts.")),
                       bool(_get(opts, "NoCopy", bool, "Mounts.VolumeOptions.")),
                       anonymous=not source)


def _volume_name(name: str) -> str:
    try:
        return check_volume_name(name)
    except InvalidArgument as e:
        raise BadRequest(str(e)) from None


def _port_bindings(host: dict[str, Any]) -> list[PortBinding]:
    out = []
    for key, bindings in (_get(host, "PortBindings", dict, "HostConfig.") or {}).items():
        m = _PORT.match(key)
        if not m or not 0 < int(m.group(1)) < 65536:
            raise BadRequest(f"invalid port {key[:40]!r}")
        if not isinstance(bindings, list):
            raise BadRequest(f"PortBindings {key!r}: must be a list")
        for b in bindings:
            if not isinstance(b, dict):
                raise BadRequest(f"PortBindings {key!r}: each binding must be an object")
            first, last = _host_ports(_get(b, "HostPort", str, "PortBindings.") or "0")
            out.append(PortBinding(int(m.group(1)), m.group(2) or "tcp",
                                   _get(b, "HostIp", str, "PortBindings.") or "", first, last))
    return out


def _host_ports(text: str) -> tuple[int, int]:
    """A HostPort: "8080", "" / "0" (any), or a range "8000-8010" (its first free port)."""
    low, sep, high = text.partition("-")
    ok = low.isdigit() and (not sep or high.isdigit())
    first, last = (int(low), int(high) if sep else 0) if ok else (-1, 0)
    if not ok or not 0 <= first < 65536 or not 0 <= last < 65536 or (sep and last < first):
        raise BadRequest(f"invalid host port {text[:20]!r}")
    return first, last if last != first else 0


def _extra_hosts(host: dict[str, Any]) -> list[str]:
    out = []
    for entry in _strings(host, "ExtraHosts", "HostConfig.") or []:
        name, sep, ip = entry.partition(":")
        if not sep or not name or not ip or any(c.isspace() for c in entry):
            raise BadRequest(f"invalid extra host {entry[:100]!r}: want name:ip")
        out.append(entry)
    return out
