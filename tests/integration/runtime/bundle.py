"""Test bundles: a busybox rootfs, a runc-like default config, and a driver that runs
spawn_init in a forked single-threaded child and collects the container's output."""

from __future__ import annotations

import copy
import json
import os
import shutil
import traceback
from dataclasses import dataclass
from typing import Any

from runtime.init import InitContext, spawn_init
from runtime.spec import parse_spec

APPLETS = ("sh", "cut", "awk", "cat", "ls", "id", "echo", "grep", "hostname", "mount",
           "sleep", "true", "false", "ps", "stat", "touch", "ulimit", "umask", "readlink",
           "test", "head", "domainname", "sysctl", "mknod", "chroot", "unshare", "kill", "wc",
           "su", "ping", "nsenter")

DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def make_rootfs(path: str) -> None:
    os.makedirs(os.path.join(path, "bin"))
    for d in ("proc", "sys", "dev", "etc", "tmp"):
        os.makedirs(os.path.join(path, d))
    shutil.copy("/bin/busybox", os.path.join(path, "bin/busybox"))
    for a in APPLETS:
        os.symlink("busybox", os.path.join(path, "bin", a))
    with open(os.path.join(path, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n")
    with open(os.path.join(path, "etc/group"), "w") as f:
        f.write("root:x:0:\nnobody:x:65534:\n")


def default_config(args: list[str]) -> dict[str, Any]:
    return copy.deepcopy({
        "ociVersion": "1.2.0",
        "process": {
            "terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {k: DEFAULT_CAPS for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "crt-init-box",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                            "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    })


@dataclass
class Result:
    status: int | None  # exit code of the container process (None: spawn failed)
    output: str  # stdout+stderr of the container
    error: str  # exception text from spawn_init, "" on success
    pid: int = 0
    extra: Any = None
    children_left: bool | None = None


def run(bundle: str, config: dict[str, Any], *, exec_fifo: str | None = None,
        console_socket: str | None = None, state: dict[str, Any] | None = None,
        on_created=None, after_spawn=None, in_place=False, **ctx_kw) -> Result:  # type: ignore[no-untyped-def]
    """Write config.json, spawn the container from a forked child, wait for it to exit.

    after_spawn(init_pid, out_fd), if given, runs in the child right after spawn_init (e.g. to
    open the exec fifo or exec_in); its return value lands in Result.extra.
    """
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    out_r, out_w = os.pipe()
    res_r, res_w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(out_r)
        os.close(res_r)
        _child(bundle, config, out_w, res_w, exec_fifo, console_socket, state, on_created,
               after_spawn, in_place, ctx_kw)
    os.close(out_w)
    os.close(res_w)
    with os.fdopen(out_r, "rb") as f:
        output = f.read().decode(errors="replace")
    with os.fdopen(res_r, "rb") as f:
        res = json.loads(f.read() or b"{}")
    os.waitpid(child, 0)
    return Result(res.get("status"), output, res.get("error", "crashed"), res.get("pid", 0),
                  res.get("extra"), res.get("children_left"))


@dataclass
class _Host:
    """The InitHost of these tests: ``on_created(pid)`` places the init; no cgroups are
    prepared, so the init reads its own once placed."""

    on_created: Any = None

    def prepare(self) -> None:
        return None

    def place(self, pid: int) -> None:
        if self.on_created is not None:
            self.on_created(pid)


def _child(bundle, config, out_w, res_w, exec_fifo, console_socket, state, on_created,
           after_spawn, in_place, ctx_kw):  # type: ignore[no-untyped-def]
    res: dict[str, Any] = {}
    try:
        ctx = InitContext(spec=parse_spec(config), bundle=bundle, container_id="crt-init-test",
                          stdout=out_w, stderr=out_w, console_socket=console_socket,
                          exec_fifo=exec_fifo, state=state or {}, **ctx_kw)
        pid = spawn_init(ctx, _Host(on_created), in_place=in_place)
        res["pid"] = pid
        if after_spawn is not None:
            res["extra"] = after_spawn(pid, out_w)
        os.close(out_w)
        _, st = os.waitpid(pid, 0)
        res["status"] = os.waitstatus_to_exitcode(st)
        res["error"] = ""
    except BaseException as e:  # noqa: BLE001
        res["error"] = f"{type(e).__name__}: {e}"
        res["trace"] = traceback.format_exc()
        try:  # spawn_init promises no half-created container: nothing left to reap
            os.waitpid(-1, os.WNOHANG)
            res["children_left"] = True
        except ChildProcessError:
            res["children_left"] = False
    finally:
        os.write(res_w, json.dumps(res).encode())
        os._exit(0)
