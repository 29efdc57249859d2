"""The pod's /etc/resolv.conf, /etc/hosts and /etc/hostname, written atomically into its
directory; containers bind-mount them."""

from __future__ import annotations

from pathlib import Path

from crid.network.api import DNSConfig
from runtime.linux.atomic import write_atomic

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
HOST_HOSTS = Path("/etc/hosts")


def resolv_conf(dns: DNSConfig | None, host_file: Path = HOST_RESOLV_CONF) -> bytes:
    """resolv.conf content: from the pod's DNSConfig, else a copy of the host's."""
    if dns is None or not (dns.servers or dns.searches or dns.options):
        try:
            return host_file.read_bytes()
        except FileNotFoundError:
            return b""
    lines = [f"nameserver {s}" for s in dns.servers]
    if dns.searches:
        lines.append("search " + " ".join(dns.searches))
    if dns.options:
        lines.append("options " + " ".join(dns.options))
    return ("\n".join(lines) + "\n").encode()


def hosts(hostname: str, ips: tuple[str, ...]) -> bytes:
    """An /etc/hosts with localhost and the pod's own name on its addresses."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback",
             "fe00::0\tip6-localnet", "fe00::0\tip6-mcastprefix",
             "fe00::1\tip6-allnodes", "fe00::2\tip6-allrouters"]
    lines += [f"{ip}\t{hostname}" for ip in ips] if hostname else []
    return ("\n".join(lines) + "\n").encode()


def write_pod_files(pod_dir: Path, hostname: str, dns: DNSConfig | None, ips: tuple[str, ...],
                    host_hosts: bool = False) -> None:
    """Writes resolv.conf, hosts and hostname into pod_dir; a host-network pod gets a copy
    of the host's /etc/hosts (its names are the host's)."""
    # The pod directory is volatile (the run root): atomic for readers, no fsync needed.
    write_atomic(pod_dir / "resolv.conf", resolv_conf(dns), durable=False)
    content = HOST_HOSTS.read_bytes() if host_hosts and HOST_HOSTS.exists() else \
        hosts(hostname, ips)
    write_atomic(pod_dir / "hosts", content, durable=False)
    write_atomic(pod_dir / "hostname", f"{hostname}\n".encode(), durable=False)
