"""Container cgroups on v1 and v2 hosts: resources parsing, limits, freezer, stats."""

from runtime.cgroups.convert import Write, blkio_to_io_weight, shares_to_weight, swap_to_v2
from runtime.cgroups.errors import CgroupError
from runtime.cgroups.freezer import FreezerState
from runtime.cgroups.manager import (
    CgroupManager,
    detect_version,
    open_cgroup,
    open_container_cgroup,
)
from runtime.cgroups.paths import (
    CgroupPath,
    Mount,
    cgroup_paths_of,
    expand_slice,
    parse_cgroups_path,
    read_mounts,
)
from runtime.cgroups.resources import (
    BlockIO,
    Cpu,
    DeviceRule,
    HugepageLimit,
    Memory,
    Network,
    Pids,
    Resources,
    ThrottleDevice,
    WeightDevice,
)
from runtime.cgroups.stats import CgroupStats, CpuStats, MemoryStats, PidsStats
from runtime.cgroups.v1 import V1Manager
from runtime.cgroups.v2 import V2Manager

__all__ = [
    "BlockIO", "CgroupError", "CgroupManager", "CgroupPath", "CgroupStats", "Cpu", "CpuStats",
    "DeviceRule", "FreezerState", "HugepageLimit", "Memory", "MemoryStats", "Mount", "Network",
    "Pids", "PidsStats", "Resources", "ThrottleDevice", "V1Manager", "V2Manager",
    "WeightDevice", "Write", "blkio_to_io_weight", "cgroup_paths_of", "detect_version",
    "expand_slice", "open_cgroup", "open_container_cgroup", "parse_cgroups_path", "read_mounts",
    "shares_to_weight", "swap_to_v2",
]
