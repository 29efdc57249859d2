"""Host sysctls the built-in network depends on (written in the caller's netns)."""

from __future__ import annotations


def _path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def read(key: str) -> str:
    with open(_path(key)) as f:
        return f.read().strip()


def ensure(key: str, value: str) -> None:
    """Set ``key`` unless it already holds ``value``. Raises OSError."""
    if read(key) != value:
        with open(_path(key), "w") as f:
            f.write(value)


def bridge_keys(bridge: str, v6: bool) -> list[tuple[str, str]]:
    """What the bridge network needs: forwarding, and route_localnet on the bridge so DNAT-ed
    packets from 127.0.0.1 (``127.0.0.1:hostPort``) may be routed out of it."""
    # Interface names may hold dots; the sysctl path uses them verbatim (ensure() maps dots
    # to slashes, so such names are refused by validation instead of mis-addressed).
    keys = [("net.ipv4.ip_forward", "1"), (f"net.ipv4.conf.{bridge}.route_localnet", "1")]
    if v6:
        keys.append(("net.ipv6.conf.all.forwarding", "1"))
    return keys
