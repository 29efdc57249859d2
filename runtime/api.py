"""The embedded runtime's public face: the only module of `runtime` the daemon (crid) imports.

Everything else in `runtime/` may change shape without crid noticing; an import-linter contract
(pyproject.toml) keeps it so. The Linux helpers crid shares with the runtime (the ctypes libc
wrapper, atomic writes, securejoin) are a leaf of their own and imported directly.
"""

from __future__ import annotations

from runtime import proctree
from runtime.cgroups import (
    CgroupManager,
    CgroupPath,
    Cpu,
    Memory,
    Mount,
    cgroup_paths_of,
    expand_slice,
    open_cgroup,
    parse_cgroups_path,
    read_mounts,
)
from runtime.cgroups import Resources as CgroupLimits
from runtime.cgroups.errors import CgroupError
from runtime.errors import (
    ContainerNotFound,
    InvalidState,
    OCIRuntimeError,
    SpecError,
    UnsupportedMount,
)
from runtime.exits import ExitWatcher, wait_exit
from runtime.features import has_mount_setattr
from runtime.launch.zygote import Zygote
from runtime.lifecycle import CreateRequest, ExecRequest, MonitorLauncher, Runtime
from runtime.monitor import framing, reopen_log
from runtime.monitor.attach import connect_unix, listen_unix
from runtime.monitor.exitfile import ExitStatus, read_exit_file
from runtime.requests import Created
from runtime.spec import Config, config_from_doc
from runtime.state import Status, process_start_time

__all__ = [
    "CgroupError", "CgroupLimits", "CgroupManager", "CgroupPath", "Config", "ContainerNotFound",
    "Cpu", "CreateRequest", "Created", "ExecRequest", "ExitStatus", "ExitWatcher", "InvalidState",
    "Memory", "MonitorLauncher", "Mount", "OCIRuntimeError", "Runtime", "SpecError", "Status",
    "UnsupportedMount", "Zygote", "cgroup_paths_of", "config_from_doc", "connect_unix",
    "expand_slice", "framing", "has_mount_setattr", "listen_unix", "open_cgroup",
    "parse_cgroups_path", "process_start_time", "proctree", "read_exit_file", "read_mounts",
    "reopen_log", "wait_exit",
]
