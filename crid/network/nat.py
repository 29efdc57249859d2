"""NAT for the built-in network: masquerade of pod egress and hostPort DNAT.

The whole ruleset is rendered from the leases on disk and replaced in one transaction, so it
is always a function of the state (teardown after a restart needs no memory of past rules).
nftables is preferred (a table of our own, ``nft -f -``); where ``nft`` is absent the same
rules go into chains of our own through ``iptables-restore --noflush``.

Rules, per family:
- masquerade pod-sourced traffic leaving the pod networks (egress to the world);
- DNAT traffic to a local address (any, or ``host_ip``) on a hostPort to the pod;
- masquerade DNAT-ed traffic from 127.0.0.0/8 (the node reaching ``127.0.0.1:hostPort``; it
  needs ``route_localnet`` on the bridge) and DNAT-ed traffic from pods (hairpin: pod → node
  → pod, so replies come back through the node to be un-NAT-ed).
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from dataclasses import dataclass
from typing import Protocol

from crid.network.api import PortMapping
from crid.network.errors import NetworkSetupFailed
from crid.network.validate import Network


@dataclass(frozen=True)
class NatTarget:
    """A hostPort and the pod addresses (plain, v4 and/or v6) it leads to."""

    mapping: PortMapping
    pod_ips: tuple[str, ...]


@dataclass(frozen=True)
class NatSpec:
    table: str
    bridge: str
    networks: tuple[Network, ...]
    targets: tuple[NatTarget, ...] = ()


def _dnat_pairs(t: NatTarget) -> list[tuple[int, str]]:
    """(family, pod ip) pairs a mapping needs a rule for."""
    want = ipaddress.ip_address(t.mapping.host_ip).version if t.mapping.host_ip else None
    out: list[tuple[int, str]] = []
    for ip in t.pod_ips:
        v = ipaddress.ip_address(ip).version
        if want in (None, v):
            out.append((v, ip))
    return out


def _nft_set(nets: list[Network]) -> str:
    return "{ " + ", ".join(str(n) for n in nets) + " }"


def render_nft(spec: NatSpec) -> str:
    """The nft script replacing table ``inet <spec.table>`` atomically."""
    t, br = spec.table, spec.bridge
    post = []
    for v, kw in ((4, "ip"), (6, "ip6")):
        nets = [n for n in spec.networks if n.version == v]
        if not nets:
            continue
        s = _nft_set(nets)
        post.append(f'ct status dnat {kw} saddr {s} oifname "{br}" masquerade')
        post.append(f"{kw} saddr {s} {kw} daddr != {s} masquerade")
    post.insert(0, "ct status dnat ip saddr 127.0.0.0/8 masquerade")
    ports = []
    for tgt in spec.targets:
        pm = tgt.mapping
        proto = pm.protocol.lower()
        for v, ip in _dnat_pairs(tgt):
            kw = "ip" if v == 4 else "ip6"
            match = f"{kw} daddr {pm.host_ip} " if pm.host_ip else f"meta nfproto ipv{v} "
            to = f"{ip}:{pm.container_port}" if v == 4 else f"[{ip}]:{pm.container_port}"
            ports.append(f"{match}meta l4proto {proto} th dport {pm.host_port} "
                         f"dnat {kw} to {to}")
    lines = [
        f"table inet {t}", f"delete table inet {t}", f"table inet {t} {{",
        "  chain postrouting {", "    type nat hook postrouting priority srcnat; policy accept;",
        *[f"    {r}" for r in post], "  }",
        "  chain prerouting {", "    type nat hook prerouting priority dstnat; policy accept;",
        "    fib daddr type local jump hostports", "  }",
        "  chain output {", "    type nat hook output priority -100; policy accept;",
        "    fib daddr type local jump hostports", "  }",
        "  chain hostports {", *[f"    {r}" for r in ports], "  }",
        "}", "",
    ]
    return "\n".join(lines)


def _chains(table: str) -> dict[str, str]:
    p = table.upper()[:16]
    return {"POSTROUTING": f"{p}-POSTROUTING", "PREROUTING": f"{p}-PREROUTING",
            "OUTPUT": f"{p}-OUTPUT", "HOSTPORTS": f"{p}-HOSTPORTS"}


def render_iptables(spec: NatSpec, version: int) -> str:
    """iptables-restore input (``--noflush``) for one family's nat table."""
    c = _chains(spec.table)
    nets = [n for n in spec.networks if n.version == version]
    rules = []
    if version == 4:
        rules.append(f"-A {c['POSTROUTING']} -s 127.0.0.0/8 -m conntrack --ctstate DNAT "
                     "-j MASQUERADE")
    for src in nets:
        rules.append(f"-A {c['POSTROUTING']} -s {src} -o {spec.bridge} -m conntrack "
                     "--ctstate DNAT -j MASQUERADE")
    for src in nets:
        rules += [f"-A {c['POSTROUTING']} -s {src} -d {dst} -j RETURN" for dst in nets]
        rules.append(f"-A {c['POSTROUTING']} -s {src} -j MASQUERADE")
    for chain in ("PREROUTING", "OUTPUT"):
        rules.append(f"-A {c[chain]} -m addrtype --dst-type LOCAL -j {c['HOSTPORTS']}")
    for tgt in spec.targets:
        pm = tgt.mapping
        for v, ip in _dnat_pairs(tgt):
            if v != version:
                continue
            dst = f"-d {pm.host_ip} " if pm.host_ip else ""
            to = f"{ip}:{pm.container_port}" if v == 4 else f"[{ip}]:{pm.container_port}"
            p = pm.protocol.lower()
            rules.append(f"-A {c['HOSTPORTS']} {dst}-p {p} -m {p} --dport {pm.host_port} "
                         f"-j DNAT --to-destination {to}")
    return "\n".join(["*nat", *[f":{n} - [0:0]" for n in c.values()], *rules, "COMMIT", ""])


class NatBackend(Protocol):
    def apply(self, spec: NatSpec) -> None: ...
    def remove(self, table: str) -> None: ...
    def present(self, table: str) -> bool: ...


def _run(argv: list[str], stdin: str = "", what: str = "") -> subprocess.CompletedProcess:
    try:
        res = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise NetworkSetupFailed(f"{what}: running {argv[0]}: {e}") from e
    return res


class Nftables:
    """Our own ``inet`` table, replaced atomically by ``nft -f -``."""

    def __init__(self, nft: str = "nft") -> None:
        self.nft = nft

    def apply(self, spec: NatSpec) -> None:
        res = _run([self.nft, "-f", "-"], render_nft(spec), f"loading nft table {spec.table}")
        if res.returncode:
            raise NetworkSetupFailed(
                f"loading nft table inet {spec.table}: {res.stderr.strip()[:2000]}")

    def remove(self, table: str) -> None:
        res = _run([self.nft, "-f", "-"], f"table inet {table}\ndelete table inet {table}\n",
                   f"removing nft table {table}")
        if res.returncode:
            raise NetworkSetupFailed(f"removing nft table inet {table}: {res.stderr.strip()}")

    def present(self, table: str) -> bool:
        return _run([self.nft, "list", "table", "inet", table]).returncode == 0


class Iptables:
    """Chains of our own in the nat table, jumped to from the built-in chains."""

    TOOLS = {4: ("iptables", "iptables-restore"), 6: ("ip6tables", "ip6tables-restore")}

    def apply(self, spec: NatSpec) -> None:
        c = _chains(spec.table)
        for v, (tool, restore) in self.TOOLS.items():
            if v == 6 and not any(n.version == 6 for n in spec.networks):
                continue
            res = _run([restore, "--noflush", "-w"], render_iptables(spec, v), "iptables")
            if res.returncode:
                raise NetworkSetupFailed(f"loading {tool} nat rules: {res.stderr.strip()}")
            for builtin in ("POSTROUTING", "PREROUTING", "OUTPUT"):
                jump = [builtin, "-j", c[builtin]]
                if _run([tool, "-w", "-t", "nat", "-C", *jump]).returncode:
                    res = _run([tool, "-w", "-t", "nat", "-I", *jump], what=tool)
                    if res.returncode:
                        raise NetworkSetupFailed(f"{tool} -I {builtin}: {res.stderr.strip()}")

    def remove(self, table: str) -> None:
        c = _chains(table)
        for tool, _ in self.TOOLS.values():
            for builtin in ("POSTROUTING", "PREROUTING", "OUTPUT"):
                while _run([tool, "-w", "-t", "nat", "-D", builtin, "-j", c[builtin]]
                           ).returncode == 0:
                    pass
            for name in c.values():
                _run([tool, "-w", "-t", "nat", "-F", name])
            for name in c.values():
                _run([tool, "-w", "-t", "nat", "-X", name])

    def present(self, table: str) -> bool:
        return _run(["iptables", "-w", "-t", "nat", "-S", _chains(table)["POSTROUTING"]]
                    ).returncode == 0


def default_backend() -> NatBackend:
    """nftables when ``nft`` is installed, else iptables."""
    return Nftables() if shutil.which("nft") else Iptables()
