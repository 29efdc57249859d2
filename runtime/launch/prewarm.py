"""Run the create path's pure parts a few times in the zygote, before it freezes its heap.

Every process that creates a container is a fork of the zygote and shares its pages
copy-on-write. Code a fork runs for the first time costs it twice over: Python 3.11 specialises
a function's bytecode in place after a few calls, and lazily built caches (the struct and regex
caches, interned strings) fill on first use; each is a write to a shared page, that is a page
copy in every fork. A fork no longer parses the spec (the Runtime sends it parsed, through
``runtime.launch.params``), but it decodes the request and runs the spec's conversions (mount
options, cgroup limits, the cgroup managers), and those pay the same way. Nothing here touches
the filesystem or the kernel's state; cgroup managers are only opened (/proc is read), never
created.
"""

from __future__ import annotations

import json
from typing import Any

from runtime import caps
from runtime.cgroup_seam import mount_hierarchies, open_cgroups
from runtime.cgroups import Resources
from runtime.errors import OCIRuntimeError
from runtime.init import mountopts
from runtime.launch import params
from runtime.monitor.launch import MonitorRequest
from runtime.monitor.options import MonitorOptions
from runtime.seccomp import prepare_filter
from runtime.spec import parse_spec

_ROUNDS = 12  # more than the interpreter's specialisation threshold (8 calls)


def prewarm(rounds: int = _ROUNDS) -> None:
    """Parse, convert and compile a typical container spec ``rounds`` times; never raises
    (a host where a part fails, e.g. without cgroups, just gets less warm)."""
    caps.last_cap()  # read once here, inherited by every fork
    raw = json.dumps(_sample())
    for _ in range(rounds):
        try:
            _once(raw)
        except (OCIRuntimeError, OSError, ValueError):
            return


def _once(raw: str) -> None:
    init = params.InitParams(id="crid-prewarm", bundle="/", spec=parse_spec(json.loads(raw)),
                             exec_fifo="", state={}, cgroups={})
    request = MonitorRequest(MonitorOptions(container_id="crid-prewarm"), init)
    spec = params.from_wire(params.to_wire(request, {"reply": 0}))[0].spawner.spec
    for m in spec.mounts:
        mountopts.parse(m.options, m.type)
    Resources.from_oci(spec.linux.resources)
    if spec.linux.seccomp is not None:
        prepare_filter(spec.linux.seccomp)
    mount_hierarchies(open_cgroups(spec, "crid-prewarm"))
    json.loads(json.dumps({"type": "go", "pid": 1, "cgroups": [["cpu", "/x"]]}))


def _sample() -> dict[str, Any]:
    """A spec shaped like the ones crid writes: every section the create path reads."""
    caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"]
    return {
        "ociVersion": "1.2.0",
        "process": {
            "terminal": False, "user": {"uid": 0, "gid": 0, "additionalGids": [10]},
            "args": ["/bin/true"], "env": ["PATH=/usr/bin:/bin", "HOSTNAME=prewarm"],
            "cwd": "/", "noNewPrivileges": True, "oomScoreAdj": 0,
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "prewarm",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
            {"destination": "/etc/hosts", "type": "bind", "source": "/etc/hosts",
             "options": ["rbind", "rprivate", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "resources": {"memory": {"limit": 1 << 30}, "pids": {"limit": 1024},
                          "cpu": {"shares": 1024, "quota": 100000, "period": 100000},
                          "devices": [{"allow": False, "access": "rwm"}]},
            "maskedPaths": ["/proc/kcore", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
            "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                        "syscalls": [{"names": ["read", "write", "exit_group"],
                                      "action": "SCMP_ACT_ALLOW"},
                                     {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                                      "args": [{"index": 0, "value": 8,
                                                "op": "SCMP_CMP_EQ"}]}]},
        },
    }
