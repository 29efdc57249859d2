"""Checks on a PodSpec before anything is created: each failure is an InvalidArgument that
names the field and the value, so nothing is left behind by a bad request."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Collection

from crid.errors import InvalidArgument
from crid.pods.cgroups import CGROUPFS, pod_cgroup_path
from crid.pods.model import CONTAINER, NODE, POD, TARGET, PodSpec, UserNamespace
from crid.runtime_info import handler_features

# Limits of glibc's resolver (resolv.h MAXNS/MAXDNSRCH are lower, but newer glibc and musl
# accept more; these are the kubelet's own validation limits, generous but finite).
MAX_DNS_SERVERS = 3
MAX_DNS_SEARCHES = 32
MAX_DNS_SEARCH_CHARS = 2048
MAX_DNS_OPTIONS = 64
MAX_DNS_OPTION_CHARS = 256
MAX_HOSTNAME = 64  # HOST_NAME_MAX
MAX_LABEL_BYTES = 256 * 1024

_HOSTNAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?$")
_SYSCTL_PART = r"[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
_SYSCTL = re.compile(rf"^{_SYSCTL_PART}([./]{_SYSCTL_PART})*$")
_CGROUP = re.compile(r"^[A-Za-z0-9_./:@-]*$")
_DNS_TOKEN = re.compile(r"^[^\s#;]+$")

# The namespaced sysctls Kubernetes and the kernel agree a pod may set: prefixes, and the
# namespace each one lives in (a pod sharing that namespace with the host may not set it).
_SAFE_PREFIXES = (("net.", "net"), ("kernel.shm", "ipc"), ("kernel.msg", "ipc"),
                  ("fs.mqueue.", "ipc"))
_SAFE_EXACT = {"kernel.sem": "ipc"}


def validate(spec: PodSpec, handlers: Collection[str], cgroup_driver: str = CGROUPFS) -> None:
    """Checks every field of spec (cgroup_parent as `cgroup_driver` reads it).

    Raises:
        InvalidArgument: naming the first bad field.
    """
    _metadata(spec)
    if spec.runtime_handler not in handlers:
        raise InvalidArgument(f"runtime handler {spec.runtime_handler[:100]!r} is not configured"
                              f" (known: {', '.join(sorted(h for h in handlers if h))})")
    _namespaces(spec)
    if spec.hostname:
        hostname(spec.hostname)
    if spec.dns is not None:
        dns(spec.dns.servers, spec.dns.searches, spec.dns.options)
    _ports(spec)
    if not _CGROUP.match(spec.cgroup_parent) or ".." in spec.cgroup_parent.split("/"):
        raise InvalidArgument(f"cgroup_parent {spec.cgroup_parent[:200]!r}: not a cgroup path")
    pod_cgroup_path(spec.cgroup_parent, "crid", cgroup_driver)  # a slice must be a valid one
    for key, value in spec.sysctls.items():
        sysctl(key, value, spec)


def _metadata(spec: PodSpec) -> None:
    md = spec.metadata
    for name in ("name", "uid", "namespace"):
        value = getattr(md, name)
        if not value:
            raise InvalidArgument(f"pod sandbox metadata.{name} is required")
        if len(value) > 253 or any(c in value for c in "/\0\n"):
            raise InvalidArgument(f"pod sandbox metadata.{name} {value[:100]!r}: not a valid name")
    size = sum(len(k) + len(v) for d in (spec.labels, spec.annotations) for k, v in d.items())
    if size > MAX_LABEL_BYTES:
        raise InvalidArgument(f"labels and annotations total {size} bytes (limit "
                              f"{MAX_LABEL_BYTES})")


def _namespaces(spec: PodSpec) -> None:
    ns = spec.namespaces
    if ns.network not in (POD, NODE):
        raise InvalidArgument(f"namespace_options.network {ns.network}: a pod's network is "
                              "POD or NODE")
    if ns.ipc not in (POD, NODE):
        raise InvalidArgument(f"namespace_options.ipc {ns.ipc}: a pod's IPC is POD or NODE")
    if ns.pid not in (POD, CONTAINER, NODE):
        hint = " (TARGET applies to containers, not pods)" if ns.pid == TARGET else ""
        raise InvalidArgument(f"namespace_options.pid {ns.pid}: not valid for a pod{hint}")
    if ns.userns is not None:
        _userns(spec, ns.userns)


def _userns(spec: PodSpec, userns: UserNamespace) -> None:
    """A pod user namespace (KEP-127): mode POD, one uid and one gid mapping, each mapping
    container id 0 (the container's root must exist in it), no host namespace beside it."""
    where = "namespace_options.userns_options"
    if not handler_features().user_namespaces:
        raise InvalidArgument(f"{where}: this node cannot run pods in user namespaces "
                              "(see Status: the kernel lacks idmapped overlay layers, or "
                              "user namespaces are disabled)")
    if userns.mode != POD:
        raise InvalidArgument(f"{where}.mode {userns.mode}: only POD (a user namespace for "
                              "the pod) or NODE (the host's) is supported")
    for kind, maps in (("uids", userns.uids), ("gids", userns.gids)):
        if len(maps) != 1:
            raise InvalidArgument(f"{where}.{kind}: exactly one mapping is supported, got "
                                  f"{len(maps)}")
        m = maps[0]
        if m.length == 0 or m.host_id + m.length > 1 << 32 or m.container_id + m.length > 1 << 32:
            raise InvalidArgument(f"{where}.{kind}: mapping {m.container_id}:{m.host_id}:"
                                  f"{m.length} is empty or overflows 32 bits")
        if m.container_id != 0:
            raise InvalidArgument(f"{where}.{kind}: mapping {m.container_id}:{m.host_id}:"
                                  f"{m.length} leaves container id 0 unmapped")
    shared = [k for k, mode in (("network", spec.namespaces.network),
                                ("pid", spec.namespaces.pid), ("ipc", spec.namespaces.ipc))
              if mode == NODE]
    if shared:
        raise InvalidArgument(f"{where}: a pod with a user namespace cannot share the host's "
                              f"{', '.join(shared)} namespace")


def hostname(name: str) -> None:
    """Raises InvalidArgument unless name is a valid hostname within the kernel's limit."""
    if len(name) > MAX_HOSTNAME or not _HOSTNAME.match(name):
        raise InvalidArgument(f"hostname {name[:100]!r}: not a valid hostname of at most "
                              f"{MAX_HOSTNAME} characters")


def dns(servers: tuple[str, ...], searches: tuple[str, ...], options: tuple[str, ...]) -> None:
    """Raises InvalidArgument for a DNS config resolv.conf cannot carry."""
    if len(servers) > MAX_DNS_SERVERS * 4:
        raise InvalidArgument(f"dns_config.servers: {len(servers)} servers (limit "
                              f"{MAX_DNS_SERVERS * 4})")
    for s in servers:
        try:
            ipaddress.ip_address(s)
        except ValueError:
            raise InvalidArgument(f"dns_config.servers: {s[:100]!r} is not an IP address") \
                from None
    if len(searches) > MAX_DNS_SEARCHES or sum(len(s) + 1 for s in searches) > \
            MAX_DNS_SEARCH_CHARS:
        raise InvalidArgument(f"dns_config.searches: {len(searches)} domains exceed the limit "
                              f"of {MAX_DNS_SEARCHES} domains / {MAX_DNS_SEARCH_CHARS} characters")
    if len(options) > MAX_DNS_OPTIONS:
        raise InvalidArgument(f"dns_config.options: {len(options)} options (limit "
                              f"{MAX_DNS_OPTIONS})")
    for token in (*searches, *options):
        if len(token) > MAX_DNS_OPTION_CHARS or not _DNS_TOKEN.match(token):
            raise InvalidArgument(f"dns_config: {token[:100]!r} is not a valid search domain "
                                  "or option")


def _ports(spec: PodSpec) -> None:
    for p in spec.port_mappings:
        if p.protocol not in ("TCP", "UDP", "SCTP"):
            raise InvalidArgument(f"port_mappings: protocol {p.protocol!r}")
        if not 0 <= p.host_port <= 65535 or not 0 < p.container_port <= 65535:
            raise InvalidArgument(f"port_mappings: port {p.host_port}->{p.container_port} "
                                  "out of range")
        if p.host_ip:
            try:
                ipaddress.ip_address(p.host_ip)
            except ValueError:
                raise InvalidArgument(f"port_mappings: host_ip {p.host_ip[:100]!r}") from None


def sysctl_path(key: str) -> str:
    """The /proc/sys-relative path of a sysctl in dotted or slashed notation."""
    # With a "/" present, "/" separates and "." is literal (net/ipv4/conf/eth0.100/forwarding).
    return key if "/" in key else key.replace(".", "/")


def sysctl(key: str, value: str, spec: PodSpec) -> None:
    """Raises InvalidArgument unless key is a namespaced sysctl the pod may set."""
    dotted = key.replace("/", ".") if "/" in key else key
    if len(key) > 253 or not _SYSCTL.match(key):
        raise InvalidArgument(f"sysctl {key[:100]!r}: not a sysctl name")
    ns = _SAFE_EXACT.get(dotted) or next(
        (n for prefix, n in _SAFE_PREFIXES if dotted.startswith(prefix)), None)
    if ns is None:
        raise InvalidArgument(f"sysctl {key!r} is not namespaced (allowed: net.*, kernel.shm*, "
                              "kernel.msg*, kernel.sem, fs.mqueue.*)")
    if ns == "net" and spec.host_network or ns == "ipc" and spec.namespaces.ipc == NODE:
        raise InvalidArgument(f"sysctl {key!r} would change the host: the pod shares the "
                              f"host's {ns} namespace")
    if len(value) > 4096 or "\n" in value or "\0" in value:
        raise InvalidArgument(f"sysctl {key!r}: value {value[:100]!r} is not valid")
