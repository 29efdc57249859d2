"""The embedded DNS of user-defined networks: local names answered, the rest forwarded,
garbage dropped; over UDP and TCP on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from crid.network.dns import DnsResponder, answer, host_resolvers

NAMES = {"web": ["10.219.0.2"], "www": ["10.219.0.2", "10.219.0.3"]}


def _lookup(name: str, client: str) -> list[str]:
    assert client in ("", "127.0.0.1")
    return NAMES.get(name, [])


def _query(name: str, rdtype: str = "A") -> dns.message.Message:
    return dns.message.make_query(name, rdtype)


def _addresses(reply: dns.message.Message) -> list[str]:
    return sorted(r.address for rrset in reply.answer for r in rrset)


def test_local_names() -> None:
    reply = dns.message.from_wire(answer(_query("WWW.").to_wire(), _lookup, list) or b"")
    assert reply.rcode() == dns.rcode.NOERROR
    assert _addresses(reply) == ["10.219.0.2", "10.219.0.3"]
    aaaa = dns.message.from_wire(answer(_query("web", "AAAA").to_wire(), _lookup, list)
                                 or b"")
    assert (aaaa.rcode(), aaaa.answer) == (dns.rcode.NOERROR, [])  # the name exists


def test_unknown_names_without_upstream_fail_and_garbage_is_dropped() -> None:
    reply = dns.message.from_wire(answer(_query("example.org").to_wire(), _lookup, list)
                                  or b"")
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert answer(b"\x00\x01garbage", _lookup, list) is None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def servers() -> Iterator[tuple[int, int]]:
    """An upstream that knows "upstream.test", and a network's responder forwarding to it."""
    up_port, port = _free_port(), _free_port()
    upstream = DnsResponder("127.0.0.1", lambda n, _: ["192.0.2.7"] if n == "upstream.test"
                            else [], upstreams=list, port=up_port)
    responder = DnsResponder("127.0.0.1", _lookup,
                             upstreams=lambda: [f"127.0.0.1#{up_port}"], port=port)
    upstream.start()
    responder.start()
    try:
        yield port, up_port
    finally:
        responder.stop()
        upstream.stop()


def test_udp_tcp_and_forwarding(servers: tuple[int, int]) -> None:
    port, _ = servers
    assert _addresses(dns.query.udp(_query("web"), "127.0.0.1", port=port, timeout=5)) == \
        ["10.219.0.2"]
    assert _addresses(dns.query.tcp(_query("web"), "127.0.0.1", port=port, timeout=5)) == \
        ["10.219.0.2"]
    forwarded = dns.query.udp(_query("upstream.test"), "127.0.0.1", port=port, timeout=5)
    assert _addresses(forwarded) == ["192.0.2.7"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # garbage: still serving
        s.sendto(b"junk", ("127.0.0.1", port))
    assert _addresses(dns.query.udp(_query("www"), "127.0.0.1", port=port, timeout=5)) == \
        ["10.219.0.2", "10.219.0.3"]


def test_host_resolvers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    conf = tmp_path / "resolv.conf"
    conf.write_text("# comment\nnameserver 192.0.2.1\nsearch example\nnameserver ::1\n")
    assert host_resolvers(conf) == ["192.0.2.1", "::1"]
    assert host_resolvers(tmp_path / "missing") == []
