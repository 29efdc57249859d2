"""Runtime-wide facts for Version, Status, RuntimeConfig and UpdateRuntimeConfig."""

from __future__ import annotations

import functools
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from crid.errors import InvalidArgument
from crid.store import MetadataStore
from runtime.api import has_mount_setattr


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class HandlerFeatures:
    """What a runtime handler can do on this kernel (CRI RuntimeHandlerFeatures)."""

    recursive_read_only_mounts: bool
    user_namespaces: bool


def handler_features() -> HandlerFeatures:
    """Both stand on mount_setattr(2) (probed once): rro is mount_setattr(AT_RECURSIVE,
    MOUNT_ATTR_RDONLY); user-namespaced pods reach their rootfs and volumes through
    idmapped mounts (MOUNT_ATTR_IDMAP) instead of chowned copies, which for the rootfs
    also needs overlayfs to take idmapped layers and user namespaces to be enabled."""
    can = has_mount_setattr()
    return HandlerFeatures(recursive_read_only_mounts=can,
                           user_namespaces=can and _user_namespaces_enabled()
                           and kernel_at_least(os.uname().release, IDMAPPED_OVERLAY_LAYERS))


# overlayfs accepts idmapped lower layers from Linux 5.19 on (older kernels refuse them
# with EINVAL, and crid would have to chown a copy of every layer instead).
IDMAPPED_OVERLAY_LAYERS = (5, 19)


def kernel_at_least(release: str, want: tuple[int, int]) -> bool:
    """Whether a uname release ("6.18.0-1-amd64") is at least major.minor."""
    m = re.match(r"(\d+)\.(\d+)", release)
    return m is not None and (int(m[1]), int(m[2])) >= want


@functools.cache
def _user_namespaces_enabled() -> bool:
    """user.max_user_namespaces is 0 where an administrator turned them off."""
    try:
        return int(Path("/proc/sys/user/max_user_namespaces").read_text()) > 0
    except (OSError, ValueError):
        return False


class NetworkStatusSource(Protocol):
    def network_condition(self) -> Condition: ...


def parse_pod_cidrs(text: str) -> list[str]:
    """Parses the kubelet's pod CIDR ("10.244.1.0/24" or a comma-separated dual-stack pair).

    Raises:
        InvalidArgument: when any part is not a network.
    """
    cidrs = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            cidrs.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError as e:
            raise InvalidArgument(f"pod CIDR {part!r}: {e}") from e
    if len({ipaddress.ip_network(c).version for c in cidrs}) != len(cidrs):
        raise InvalidArgument(f"pod CIDR {text!r}: at most one IPv4 and one IPv6 network")
    return cidrs


class PodCidrStore:
    """Keeps the pod CIDR the kubelet sent across restarts (it wins over the config's)."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store

    def get(self) -> list[str]:
        rec = self._store.get("runtime", "pod_cidr")
        return rec["cidrs"] if rec else []

    def set(self, cidrs: list[str]) -> None:
        self._store.put("runtime", "pod_cidr", {"cidrs": cidrs})
