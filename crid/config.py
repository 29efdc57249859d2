"""crid's configuration: every option declared once, as a dataclass field with its help text.

Sources, later ones winning: built-in defaults, `/etc/crid/crid.toml` (or `--config FILE`), the
drop-ins `crid.d/*.toml` beside it (lexical order), then command-line flags. Loading has no side
effects. `render_toml` prints the effective configuration as commented TOML (`crid config`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_FILE = Path("/etc/crid/crid.toml")


class ConfigError(Exception):
    """A configuration file or flag is wrong; the message names the file, key and problem."""


def opt(default: Any, help: str, *, choices: tuple[str, ...] = (), kind: str = "") -> Any:
    """Declares one option: its default, help (the TOML comment) and an optional check."""
    meta = {"help": help, "choices": choices, "kind": kind}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")


def parse_duration(text: str) -> float:
    """Parses a Go-style duration ("4h", "30s", "1h30m", "250ms") into seconds."""
    m = _DURATION.match(text)
    if not text or not m or not any(m.groups()):
        raise ValueError(f"not a duration: {text!r} (use e.g. \"4h\", \"30s\", \"1h30m\")")
    h, mi, s, ms = (int(g or 0) for g in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000


_SIZE = re.compile(r"^(\d+)\s*([kmgt]?)(i?b?)$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Parses a byte size ("65536", "64m", "64Mi", "1G") into bytes (binary multiples)."""
    m = _SIZE.match(text.strip())
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. \"64Mi\", \"1G\", \"65536\")")
    return int(m.group(1)) * 1024 ** "_kmgt".index((m.group(2) or "_").lower())


UNIX_SCHEME = "unix://"


def socket_file(listen: str) -> str:
    """The filesystem path of a `listen` value: a path, or `unix://PATH` as crictl and the
    kubelet write endpoints."""
    return listen[len(UNIX_SCHEME):] if listen.startswith(UNIX_SCHEME) else listen


def _check_listen(value: str) -> None:
    if not value:
        return
    if "://" in value and not value.startswith(UNIX_SCHEME):
        raise ValueError(f"{value!r}: only unix sockets are served (a path or unix:///path)")
    if not socket_file(value).startswith("/"):
        raise ValueError(f"{value!r} is not an absolute socket path (use /path or unix:///path)")


def split_host_port(value: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` as (host, port).

    Raises:
        ValueError: not of that form, or the host is not an IP address.
    """
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not host:port (e.g. \"127.0.0.1:9540\")")
    ipaddress.ip_address(host)  # a name would make the listener depend on the resolver
    return host, int(port)


def _check_cidr(value: str, version: int) -> None:
    if value:
        net = ipaddress.ip_network(value, strict=True)
        if net.version != version:
            raise ValueError(f"{value!r} is not an IPv{version} network")


@dataclass(frozen=True)
class RegistryConfig:
    mirrors: list[str] = opt([], "mirror endpoints, tried in order before the upstream")
    insecure: bool = opt(False, "allow plain HTTP and unverified TLS for this host")


@dataclass(frozen=True)
class ImagesConfig:
    short_name_registries: list[str] = opt(["docker.io"], "registries for unqualified names")
    auth_file: str = opt("/etc/crid/auth.json", "docker config.json-style credentials")
    certs_dir: str = opt("/etc/crid/certs.d", "<host[:port]>/ca.crt, client.cert, client.key")
    parallel_downloads: int = opt(4, "layers fetched at once per pull", kind="positive")
    pinned: list[str] = opt(["registry.k8s.io/pause:3.10"], "never garbage-collected")
    registries: dict[str, RegistryConfig] = opt({}, "per-registry settings")


@dataclass(frozen=True)
class NetworkConfig:
    mode: str = opt("auto", "builtin, cni, or auto (CNI when cni_conf_dir holds a config)",
                    choices=("auto", "builtin", "cni"))
    cni_conf_dir: str = opt("/etc/cni/net.d", "CNI network configurations")
    cni_bin_dirs: list[str] = opt(["/opt/cni/bin", "/usr/lib/cni"], "CNI plugin directories")
    bridge: str = opt("crid0", "built-in network bridge name", kind="ifname")
    pod_cidr: str = opt("10.88.0.0/16", "built-in network; UpdateRuntimeConfig's pod CIDR wins",
                        kind="cidr4")
    pod_cidr_v6: str = opt("", "set for dual stack", kind="cidr6")


@dataclass(frozen=True)
class PodsConfig:
    shm_size: str = opt("64Mi", "size of each pod's /dev/shm tmpfs", kind="size")
    runtime_handlers: list[str] = opt([], "runtime handlers accepted besides the default")


@dataclass(frozen=True)
class StreamingConfig:
    address: str = opt("127.0.0.1", "address of the exec/attach/port-forward server", kind="ip")
    port: int = opt(0, "port; 0 picks a free one", kind="port")
    idle_timeout: str = opt("4h", "close a session idle this long", kind="duration")
    tls_cert: str = opt("", "PEM certificate; serve HTTPS when set with tls_key")
    tls_key: str = opt("", "PEM private key")


@dataclass(frozen=True)
class DockerConfig:
    enable: bool = opt(True, "serve the Docker Engine API (docs/docker-api.md)")
    listen: str = opt("", "its unix socket; empty means <run_root>/docker.sock (mode 0660, "
                      "root-equivalent)")
    tcp: str = opt("", "host:port of a TCP listener too (dockerd -H tcp://); served only with "
                   "tls_cert, tls_key and tls_ca: clients need a certificate that CA signed "
                   "(dockerd's --tlsverify)")
    tls_cert: str = opt("", "PEM server certificate of the TCP listener")
    tls_key: str = opt("", "PEM private key of tls_cert")
    tls_ca: str = opt("", "PEM CA bundle that client certificates must chain to")
    group: str = opt("", "group owning the socket; empty means root's")
    cgroup_parent: str = opt("", "cgroup parent of Docker-side containers' pods; empty means "
                             "the pods' default")
    max_upload_size: str = opt("16Gi", "largest request body an upload endpoint takes (build "
                               "context, docker load archive, cp tar); spooled under root",
                               kind="size")


@dataclass(frozen=True)
class MetricsConfig:
    enable: bool = opt(False, "serve Prometheus metrics over HTTP at /metrics (docs/operating.md)")
    listen: str = opt("127.0.0.1:9540", "host:port of the metrics server; loopback unless a "
                      "scraper elsewhere needs it (the page is unauthenticated)", kind="hostport")


def _check_otlp_endpoint(value: str) -> None:
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or "/" in rest.rstrip("/"):
        raise ValueError(f"{value!r} is not an OTLP/gRPC endpoint (e.g. \"http://127.0.0.1:4317\"; "
                         "https:// for TLS)")


@dataclass(frozen=True)
class TracingConfig:
    enable: bool = opt(False, "export OpenTelemetry spans of CRI calls (docs/operating.md)")
    endpoint: str = opt("http://127.0.0.1:4317", "OTLP/gRPC collector: http:// plain, https:// "
                        "TLS", kind="otlp")
    sampling_rate: float = opt(1.0, "fraction of new traces recorded, 0.0-1.0 (a caller's "
                               "sampled traceparent is always followed)", kind="fraction")


@dataclass(frozen=True)
class Config:
    root: str = opt("/var/lib/crid", "persistent state: images, containers, metadata")
    run_root: str = opt("/run/crid", "volatile state: socket, namespaces, monitors")
    listen: str = opt("", "CRI socket: a path or unix:///path; empty means <run_root>/crid.sock",
                      kind="listen")
    log_level: str = opt("info", "log level", choices=("debug", "info", "warning", "error"))
    log_format: str = opt("auto", "text on a terminal, else JSON", choices=("auto", "text", "json"))
    cgroup_driver: str = opt("cgroupfs", "cgroup driver: reported to the kubelet, lays out pod and "
                             "container cgroups (docs/containers.md)",
                             choices=("cgroupfs", "systemd"))
    default_runtime_handler: str = opt("crid", "runtime handler used for an empty handler name")
    images: ImagesConfig = field(default_factory=ImagesConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    pods: PodsConfig = field(default_factory=PodsConfig)
    streaming: StreamingConfig = field(default_factory=StreamingConfig)
    docker: DockerConfig = field(default_factory=DockerConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    tracing: TracingConfig = field(default_factory=TracingConfig)

    @property
    def socket_path(self) -> str:
        return socket_file(self.listen) or str(Path(self.run_root) / "crid.sock")

    @property
    def docker_socket_path(self) -> str:
        return self.docker.listen or str(Path(self.run_root) / "docker.sock")


_KIND_CHECKS: dict[str, Callable[[Any], object]] = {
    "positive": lambda v: None if v > 0 else _raise("must be greater than 0"),
    "port": lambda v: None if 0 <= v <= 65535 else _raise("must be a port number 0-65535"),
    "duration": lambda v: parse_duration(v) and None,
    "size": lambda v: None if parse_size(v) > 0 else _raise("must be greater than 0"),
    "cidr4": lambda v: _check_cidr(v, 4),
    "cidr6": lambda v: _check_cidr(v, 6),
    "ip": lambda v: ipaddress.ip_address(v) and None,
    "listen": _check_listen,
    "hostport": lambda v: split_host_port(v) and None,
    "otlp": _check_otlp_endpoint,
    "fraction": lambda v: None if 0.0 <= v <= 1.0 else _raise("must be between 0.0 and 1.0"),
    "ifname": lambda v: None if 0 < len(v) <= 15 and "/" not in v and " " not in v
    else _raise("must be a network interface name of 1-15 characters"),
}


def _raise(msg: str) -> None:
    raise ValueError(msg)


def _type_ok(value: Any, ftype: Any) -> bool:
    t = str(ftype)
    if t == "bool":
        return isinstance(value, bool)
    if t == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "str":
        return isinstance(value, str)
    if t == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t.startswith("list[str]"):
        return isinstance(value, list) and all(isinstance(x, str) for x in value)
    return False


def _build(cls: type, table: Any, where: str, base: Any) -> Any:
    """Returns a copy of `base` (an instance of cls) with the keys of `table` applied."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    known = {f.name: f for f in fields(cls)}
    changes: dict[str, Any] = {}
    for key, value in table.items():
        f = known.get(key)
        name = f"{where}.{key}" if where else key
        if f is None:
            raise ConfigError(f"{name}: unknown key")
        changes[key] = _value(f, value, name, getattr(base, key))
    return dataclasses.replace(base, **changes)


def _value(f: dataclasses.Field, value: Any, name: str, current: Any) -> Any:
    if dataclasses.is_dataclass(current):
        return _build(type(current), value, name, current)
    if str(f.type).startswith("dict[str, RegistryConfig]"):
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a table of registries")
        merged = dict(current)
        for host, sub in value.items():
            merged[host] = _build(RegistryConfig, sub, f"{name}.{host!r}",
                                  current.get(host, RegistryConfig()))
        return merged
    if not _type_ok(value, f.type):
        raise ConfigError(f"{name}: expected {f.type}, got {type(value).__name__} {value!r}")
    if str(f.type) == "float":
        value = float(value)  # TOML's 1 is an integer
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"{name}: {value!r} is not one of {', '.join(choices)}")
    check = _KIND_CHECKS.get(f.metadata.get("kind", ""))
    if check:
        try:
            check(value)
        except ValueError as e:
            raise ConfigError(f"{name}: {e}") from e
    return value


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from e
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from e


def load(config_file: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Loads defaults, then the main file and its drop-ins, then `overrides` (from flags).

    A missing default file is fine; a missing file named with --config is an error.

    Raises:
        ConfigError: naming the file, key and problem.
    """
    path = config_file or DEFAULT_CONFIG_FILE
    cfg = Config()
    if path.exists() or config_file is not None:
        cfg = _apply(cfg, _read_toml(path), str(path))
    dropins = path.parent / "crid.d"
    if dropins.is_dir():
        for extra in sorted(dropins.glob("*.toml")):
            cfg = _apply(cfg, _read_toml(extra), str(extra))
    if overrides:
        cfg = _apply(cfg, overrides, "command line")
    return cfg


def _apply(cfg: Config, table: dict[str, Any], source: str) -> Config:
    try:
        return _build(Config, table, "", cfg)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """The configuration as plain data (for `Status` verbose info)."""
    return dataclasses.asdict(cfg)


def render_toml(cfg: Config) -> str:
    """The effective configuration as TOML, each key preceded by its help as a comment."""
    lines = ["# crid configuration (effective values). Defaults are built in; this file",
             "# and /etc/crid/crid.d/*.toml override them, and flags override both.", ""]
    _render_table(cfg, [], lines)
    return "\n".join(lines).rstrip() + "\n"


def _render_table(obj: Any, path: list[str], lines: list[str]) -> None:
    nested = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            nested.append((f.name, value))
            continue
        if isinstance(value, dict):
            nested.extend((f"{f.name}.{_toml_key(k)}", v) for k, v in value.items())
            lines.append(f"# {f.metadata['help']}: [{'.'.join(path + [f.name])}.\"<host>\"]")
            continue
        lines.append(f"# {f.metadata['help']}")
        lines.append(f"{f.name} = {_toml_value(value)}")
    for name, value in nested:
        lines += ["", f"[{'.'.join(path + [name])}]"]
        _render_table(value, path + [name], lines)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
