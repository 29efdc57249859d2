"""Published ports decided at create, as Docker decides them: `-P` publishes every exposed
port (the image's and the client's), and a host port left open (`-p 80`, HostPort "" or "0")
or given as a range (`-p 8000-8010:80`) becomes a concrete free port, so inspect,
`docker port` and the NAT rules all see the same number.

A port is free when no pod (of either front door) maps it and the host can bind it (a
listener on the node would shadow it otherwise). Creates are serialised by the caller, so
two Docker containers never pick the same port.
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import socket
from collections.abc import Iterable
from typing import Any

from crid.docker.create_body import CreateBody, PortBinding
from crid.docker.deps import DockerDeps
from crid.errors import ResourceExhausted

EPHEMERAL = "/proc/sys/net/ipv4/ip_local_port_range"
DEFAULT_RANGE = (32768, 60999)
RANDOM_TRIES = 256
_KINDS = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}


def publish(d: DockerDeps, body: CreateBody, image_config: dict[str, Any]) -> CreateBody:
    """The body with the image's exposed ports merged in and every binding concrete.

    Raises:
        ResourceExhausted: no free port in a range (or in the ephemeral range).
    """
    exposed = sorted({_key(p) for p in [*body.exposed_ports,
                                        *((image_config.get("config") or {})
                                          .get("ExposedPorts") or {})]})
    bindings = list(body.port_bindings)
    if body.network_mode != "bridge":
        return dataclasses.replace(body, exposed_ports=exposed)
    if body.publish_all:
        bound = {(b.container_port, b.protocol) for b in bindings}
        for key in exposed:
            number, _, proto = key.partition("/")
            if (int(number), proto) not in bound:
                bindings.append(PortBinding(int(number), proto, "", 0))
    used = _used(d)
    chosen = []
    for b in bindings:
        port = _choose(b, used)
        used.add((b.protocol, port))
        chosen.append(dataclasses.replace(b, host_port=port, host_port_end=0))
    return dataclasses.replace(body, exposed_ports=exposed, port_bindings=chosen)


def _key(port: str) -> str:
    return port if "/" in port else f"{port}/tcp"


def _used(d: DockerDeps) -> set[tuple[str, int]]:
    return {(m.protocol.lower(), m.host_port) for p in d.pods.list_pods()
            for m in p.spec.port_mappings if m.host_port}


def _choose(b: PortBinding, used: set[tuple[str, int]]) -> int:
    if b.host_port and not b.host_port_end:
        return b.host_port  # fixed: a conflict is the network's to report
    if b.host_port_end:
        candidates: Iterable[int] = range(b.host_port, b.host_port_end + 1)
        what = f"{b.host_port}-{b.host_port_end}"
    else:
        low, high = _ephemeral()
        candidates = (low + secrets.randbelow(high - low + 1) for _ in range(RANDOM_TRIES))
        what = f"{low}-{high}"
    for port in candidates:
        if (b.protocol, port) not in used and _bindable(b.protocol, b.host_ip, port):
            return port
    raise ResourceExhausted(f"all ports are allocated: no free {b.protocol} port in {what} "
                            f"for container port {b.container_port}")


def _ephemeral() -> tuple[int, int]:
    with contextlib.suppress(OSError, ValueError), open(EPHEMERAL) as f:
        low, high = (int(v) for v in f.read().split())
        return low, high
    return DEFAULT_RANGE


def _bindable(protocol: str, host_ip: str, port: int) -> bool:
    kind = _KINDS.get(protocol)
    if kind is None:
        return True  # sctp: no socket probe; the pod map is the only claim
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    try:
        with socket.socket(family, kind) as s:
            s.bind((host_ip or "0.0.0.0", port))
    except OSError:
        return False
    return True
