"""``features`` output: what this runtime implements (runtime-spec features.md)."""

from __future__ import annotations

import errno
import functools
from typing import Any

from runtime.linux import libc

_BASIC_MOUNT_OPTIONS = [
    "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "lazytime",
    "mand", "noatime", "nodev", "nodiratime", "noexec", "nolazytime", "nomand", "norelatime",
    "nostrictatime", "nosuid", "nosymfollow", "private", "rbind", "relatime", "remount",
    "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "silent", "slave",
    "strictatime", "suid", "symfollow", "sync", "unbindable",
]
# recursive (mount_setattr AT_RECURSIVE), listed only where the kernel has it
_RECURSIVE_MOUNT_OPTIONS = [
    "rro", "rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec", "rnodiratime",
    "rdiratime", "rrelatime", "rnorelatime", "rnoatime", "ratime", "rstrictatime",
    "rnostrictatime", "rnosymfollow", "rsymfollow",
]
_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON",
    "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]


@functools.cache
def has_mount_setattr() -> bool:
    """Whether the kernel has mount_setattr(2) (≥ 5.12): what recursive read-only mounts and
    idmapped mounts stand on. Probed once, as runc does: a call on fd -1 fails with EBADF
    where the syscall exists and ENOSYS where it does not."""
    try:
        libc.mount_setattr(-1, "", libc.AT_EMPTY_PATH)
    except OSError as e:
        return e.errno != errno.ENOSYS
    return True


def mount_options() -> list[str]:
    """Every mount option this runtime applies on this kernel."""
    return _BASIC_MOUNT_OPTIONS + (_RECURSIVE_MOUNT_OPTIONS if has_mount_setattr() else [])


def features() -> dict[str, Any]:
    """The features.md JSON document."""
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer",
                  "poststart", "poststop"],
        "mountOptions": mount_options(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": _CAPS,
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": False},
            "seccomp": {
                "enabled": True,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
                            "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
                            "SCMP_ACT_TRAP", "SCMP_ACT_TRACE"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE",
                              "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                               "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                               "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                   "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            # idmap/ridmap binds, mapped like the user namespace the container joins
            "mountExtensions": {"idmap": {"enabled": has_mount_setattr()}},
        },
        "annotations": {"io.github.crid.runtime.monitor": "per-container monitor, CRI logs",
                        **_libseccomp_annotation()},
    }


def _libseccomp_annotation() -> dict[str, str]:
    """runc's annotation naming the libseccomp that compiles the filters (none if absent)."""
    try:
        return {"io.github.seccomp.libseccomp.version": libc.seccomp_version()}
    except OSError:
        return {}
