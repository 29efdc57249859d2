"""Subnets of user-defined networks: the one asked for, or the first free default pool;
never one overlapping another network or a route of the host."""

from __future__ import annotations

import ipaddress

import pytest

from crid.errors import FailedPrecondition, InvalidArgument
from crid.network.named import POOL, pick_subnet


def _nets(*texts: str) -> list[ipaddress.IPv4Network]:
    return [ipaddress.ip_network(t) for t in texts]  # type: ignore[misc]


def test_first_free_pool() -> None:
    assert str(pick_subnet("", [])) == "172.18.0.0/16"
    taken = _nets("172.18.0.0/16", "172.19.5.0/24", "10.88.0.0/16")
    assert str(pick_subnet("", taken)) == "172.20.0.0/16"
    assert str(pick_subnet("", _nets("172.16.0.0/12"))) == "192.168.0.0/20"


def test_every_pool_taken() -> None:
    with pytest.raises(FailedPrecondition):
        pick_subnet("", list(POOL))


def test_asked_for() -> None:
    assert str(pick_subnet("10.219.3.0/24", _nets("10.219.4.0/24"))) == "10.219.3.0/24"
    with pytest.raises(FailedPrecondition, match="overlaps"):
        pick_subnet("10.219.0.0/16", _nets("10.219.4.0/24"))


@pytest.mark.parametrize("text", ["10.0.0.1/24", "10.0.0.0/31", "fd00::/64", "nonsense",
                                  "10.0.0.0/33"])
def test_refused(text: str) -> None:
    with pytest.raises(InvalidArgument):
        pick_subnet(text, [])
