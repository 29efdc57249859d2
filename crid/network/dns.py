"""The embedded DNS of a user-defined network: names of the containers on it (and their
aliases) answered from the daemon, every other name forwarded to the host's resolvers.

Docker listens on 127.0.0.11 inside each container's network namespace, which takes a
socket opened in every namespace and a DNAT rule in each; crid listens on the network's
gateway address on the host instead (as podman's aardvark-dns does), which every container
on the bridge reaches and which needs nothing inside the containers. Messages are parsed
and built by dnspython; the server is a thread of its own per network, UDP and TCP.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from crid import logs

log = logs.get("crid.network.dns")
PORT = 53
TTL = 600  # Docker's
FORWARD_TIMEOUT = 3.0
TCP_TIMEOUT = 5.0
MAX_MESSAGE = 65535
IP_FREEBIND = 15  # linux/in.h: bind an address the bridge does not carry yet
HOST_RESOLV_CONF = Path("/etc/resolv.conf")

# (a name in lower case without its trailing dot, the asking client's address) -> IPv4
# addresses: a container resolves the names of every network it is on, not only this one.
Lookup = Callable[[str, str], list[str]]
# Upstream resolvers: "addr" (port 53) or "addr#port", tried in order.


def host_resolvers(path: Path = HOST_RESOLV_CONF) -> list[str]:
    """The nameservers of the host's resolv.conf."""
    out = []
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                out.append(parts[1])
    return out


def answer(wire: bytes, lookup: Lookup, upstreams: Callable[[], list[str]], client: str = ""
           ) -> bytes | None:
    """The reply to one query message from `client` (None for one that cannot be parsed:
    dropped, as a resolver drops garbage)."""
    try:
        query = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        return None
    if query.flags & dns.flags.QR or len(query.question) != 1:
        return _reply(query, dns.rcode.FORMERR)
    q = query.question[0]
    name = q.name.to_text(omit_final_dot=True).lower()
    ips = lookup(name, client) if q.rdclass == dns.rdataclass.IN else []
    if ips:
        reply = dns.message.make_response(query)
        reply.flags |= dns.flags.AA | dns.flags.RA
        if q.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
            reply.answer.append(dns.rrset.from_text_list(q.name, TTL, "IN", "A", ips))
        return reply.to_wire()  # AAAA and the rest: the name exists, no such record
    return _forward(query, upstreams())


def _reply(query: dns.message.Message, rcode: dns.rcode.Rcode) -> bytes:
    reply = dns.message.make_response(query)
    reply.set_rcode(rcode)
    reply.flags |= dns.flags.RA
    return reply.to_wire()


def _forward(query: dns.message.Message, upstreams: list[str]) -> bytes:
    for upstream in upstreams:
        server, _, port_text = upstream.partition("#")  # "addr" or "addr#port"
        port = int(port_text) if port_text.isdigit() else PORT
        try:
            reply = dns.query.udp(query, server, timeout=FORWARD_TIMEOUT, port=port)
            if reply.flags & dns.flags.TC:
                reply = dns.query.tcp(query, server, timeout=FORWARD_TIMEOUT, port=port)
            return reply.to_wire()
        except (dns.exception.DNSException, OSError):
            continue
    return _reply(query, dns.rcode.SERVFAIL)


class DnsResponder:
    """Serves `lookup` on address:53 (UDP and TCP) until stop()."""

    def __init__(self, address: str, lookup: Lookup,
                 upstreams: Callable[[], list[str]] = host_resolvers, port: int = PORT) -> None:
        self.address, self._lookup, self._upstreams = address, lookup, upstreams
        self._udp = _bound(socket.SOCK_DGRAM, address, port)
        try:
            self._tcp = _bound(socket.SOCK_STREAM, address, port)
            self._tcp.listen(64)
        except BaseException:
            self._udp.close()
            raise
        self._wake_r, self._wake_w = socket.socketpair()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"dns-{address}")
        self._thread = threading.Thread(target=self._serve, name=f"dns-{address}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._thread.join(5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        for s in (self._udp, self._tcp, self._wake_r, self._wake_w):
            s.close()

    def _serve(self) -> None:
        with selectors.DefaultSelector() as sel:
            sel.register(self._udp, selectors.EVENT_READ, "udp")
            sel.register(self._tcp, selectors.EVENT_READ, "tcp")
            sel.register(self._wake_r, selectors.EVENT_READ, "wake")
            while True:
                for key, _ in sel.select():
                    if key.data == "wake":
                        return
                    with contextlib.suppress(OSError):
                        if key.data == "udp":
                            wire, peer = self._udp.recvfrom(MAX_MESSAGE)
                            self._pool.submit(self._udp_reply, wire, peer)
                        else:
                            conn, _ = self._tcp.accept()
                            self._pool.submit(self._tcp_serve, conn)

    def _udp_reply(self, wire: bytes, peer: tuple[str, int]) -> None:
        reply = self._safe_answer(wire, peer[0])
        if reply is not None:
            if len(reply) > 512:  # the classic UDP limit: the client retries over TCP
                reply = _truncated(wire) or reply
            with contextlib.suppress(OSError):
                self._udp.sendto(reply, peer)

    def _tcp_serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(TCP_TIMEOUT)
            with contextlib.suppress(OSError, struct.error):
                client = conn.getpeername()[0]
                while True:
                    head = _recv_exact(conn, 2)
                    if head is None:
                        return
                    wire = _recv_exact(conn, struct.unpack("!H", head)[0])
                    reply = self._safe_answer(wire, client) if wire is not None else None
                    if reply is None:
                        return
                    conn.sendall(struct.pack("!H", len(reply)) + reply)

    def _safe_answer(self, wire: bytes, client: str) -> bytes | None:
        try:
            return answer(wire, self._lookup, self._upstreams, client)
        except Exception as e:  # one bad query must not end the server
            log.warning("dns query failed", address=self.address, error=str(e))
            return None


def _truncated(wire: bytes) -> bytes | None:
    with contextlib.suppress(dns.exception.DNSException):
        reply = dns.message.make_response(dns.message.from_wire(wire))
        reply.flags |= dns.flags.TC
        return reply.to_wire()
    return None


def _recv_exact(conn: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _bound(kind: int, address: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, kind | socket.SOCK_CLOEXEC)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        s.bind((address, port))
    except BaseException:
        s.close()
        raise
    return s
