"""IPAM without root: address picking, leases on disk, concurrency across threads and
processes."""

from __future__ import annotations

import ipaddress
import multiprocessing
import threading

import pytest

from crid.network.api import PortMapping
from crid.network.errors import AddressExhausted
from crid.network.leases import Lease, LeaseStore, gateway_of, pick_address

NET = ipaddress.ip_network("10.9.0.0/29")  # .2-.6 usable


def test_pick_skips_network_gateway_and_broadcast_and_wraps():
    assert str(gateway_of(NET)) == "10.9.0.1"
    assert str(pick_address(NET, set(), None)) == "10.9.0.2"
    assert str(pick_address(NET, set(), ipaddress.ip_address("10.9.0.4"))) == "10.9.0.5"
    used = {ipaddress.ip_address(f"10.9.0.{i}") for i in (5, 6)}
    assert str(pick_address(NET, used, ipaddress.ip_address("10.9.0.4"))) == "10.9.0.2"


def test_pick_raises_when_exhausted():
    used = {ipaddress.ip_address(f"10.9.0.{i}") for i in range(2, 7)}
    with pytest.raises(AddressExhausted, match="10.9.0.0/29"):
        pick_address(NET, used, None)


def test_pick_ipv6_large_range_is_cheap():
    net = ipaddress.ip_network("fd00::/48")
    assert str(pick_address(net, set(), None)) == "fd00::2"


def test_leases_round_trip_and_round_robin(tmp_path):
    store = LeaseStore(str(tmp_path))
    with store.held():
        a = store.allocate([NET], store.all())
        store.put(Lease("a", a, "vethx", port_mappings=[PortMapping(80, 8080, "UDP")]))
        b = store.allocate([NET], store.all())
    assert (a, b) == (["10.9.0.2/29"], ["10.9.0.3/29"])
    assert LeaseStore(str(tmp_path)).get("a") == Lease("a", a, "vethx", port_mappings=[
        PortMapping(80, 8080, "UDP")])
    assert store.remove("a") and not store.remove("a")
    with store.held():  # a released address is not reused at once
        assert store.allocate([NET], store.all()) == ["10.9.0.4/29"]


def _allocate_many(state_dir: str, prefix: str, n: int) -> None:
    store = LeaseStore(state_dir)
    net = ipaddress.ip_network("10.10.0.0/16")
    for i in range(n):
        with store.held():
            addrs = store.allocate([net], store.all())
            store.put(Lease(f"{prefix}-{i}", addrs))


def test_no_address_is_handed_out_twice_across_threads_and_processes(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_allocate_many, args=(str(tmp_path), f"p{i}", 15))
             for i in range(3)]
    threads = [threading.Thread(target=_allocate_many, args=(str(tmp_path), f"t{i}", 15))
               for i in range(3)]
    for w in procs + threads:
        w.start()
    for w in procs + threads:
        w.join()
    leases = LeaseStore(str(tmp_path)).all()
    addrs = [a for lease in leases for a in lease.addresses]
    assert len(leases) == 90
    assert len(set(addrs)) == 90


def test_a_corrupt_lease_file_neither_blocks_others_nor_survives_removal(tmp_path):
    store = LeaseStore(str(tmp_path))
    (tmp_path / "pods" / "bad.json").write_text("{torn")
    (tmp_path / "pods" / "odd.json").write_text("[1, 2]")
    store.put(Lease("good", ["10.9.0.2/29"]))
    assert [lease.pod_id for lease in store.all()] == ["good"]
    assert store.get("bad") is None
    assert store.remove("bad")


def test_two_stores_on_one_dir_see_each_others_changes(tmp_path):
    """Each instance caches the leases; the lock file's token tells when the cache is stale."""
    net = ipaddress.ip_network("10.11.0.0/29")
    a, b = LeaseStore(str(tmp_path)), LeaseStore(str(tmp_path))
    got = []
    for i in range(4):
        store = (a, b)[i % 2]
        with store.held():
            addrs = store.allocate([net], store.all())
            store.put(Lease(f"p{i}", addrs), durable=False)
        store.make_durable(f"p{i}")
        got += addrs
    assert got == ["10.11.0.2/29", "10.11.0.3/29", "10.11.0.4/29", "10.11.0.5/29"]
    assert b.remove("p0")
    with a.held():
        assert [lease.pod_id for lease in a.all()] == ["p1", "p2", "p3"]
        assert a.get("p0") is None


def test_a_change_outside_the_lock_path_invalidates_the_cache(tmp_path):
    """A holder killed after changing the disk but before finishing still left a new token:
    the token is replaced before the change."""
    store = LeaseStore(str(tmp_path))
    with store.held():
        store.put(Lease("a", ["10.9.0.2/29"]))
    other = LeaseStore(str(tmp_path))
    with other.held():
        other.lock.mark_changing()
        (tmp_path / "pods" / "b.json").write_text(
            '{"pod_id": "b", "addresses": ["10.9.0.3/29"]}')
    with store.held():
        assert [lease.pod_id for lease in store.all()] == ["a", "b"]
