"""net.ipv4.ping_group_range of a user-namespaced pod: the container's gids, written as the
host gids they map to (the daemon writes from the host's user namespace)."""

from __future__ import annotations

import pytest

from crid.errors import InvalidArgument
from crid.pods.model import IdMapping, UserNamespace
from crid.pods.sysctl_ids import PING_GROUP_RANGE, in_host_ids

USERNS = UserNamespace(uids=(IdMapping(0, 131072, 65536),), gids=(IdMapping(0, 131072, 65536),))


@pytest.mark.parametrize(("value", "written"), [
    ("0 2147483647", "131072 196607"),  # every group: up to the range's last gid
    ("100 200", "131172 131272"),
    ("1 0", "131073 131072"),  # an empty range stays empty (ping disabled)
    ("0\t65535", "131072 196607"),
    ("bad", "bad"),  # left to the kernel, which refuses it
])
def test_ping_group_range_in_host_ids(value: str, written: str) -> None:
    assert in_host_ids(PING_GROUP_RANGE, value, USERNS) == written


def test_other_sysctls_and_plain_pods_are_written_as_given() -> None:
    assert in_host_ids("net/ipv4/ip_unprivileged_port_start", "0", USERNS) == "0"
    assert in_host_ids(PING_GROUP_RANGE, "0 2147483647", None) == "0 2147483647"


def test_a_lower_bound_outside_the_range_is_refused_by_name() -> None:
    with pytest.raises(InvalidArgument, match=r"gid 70000 is not mapped .*gids 0-65535"):
        in_host_ids(PING_GROUP_RANGE, "70000 70001", USERNS)
