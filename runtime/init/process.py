"""The container process's own attributes, set just before exec: rlimits, OOM score, user and
groups, capabilities, umask, no_new_privs, AppArmor, personality, console, and the program
path (looked up in the container's PATH)."""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import socket
import struct
import termios

from runtime import caps
from runtime.errors import SecurityError
from runtime.linux import libc
from runtime.sockpath import short_path
from runtime.spec.model import ConsoleSize, Personality, Process

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"


def set_rlimits(process: Process) -> None:
    for rl in process.rlimits:
        which = getattr(resource, rl.type)
        soft = resource.RLIM_INFINITY if rl.soft >= 2**64 - 1 else rl.soft
        hard = resource.RLIM_INFINITY if rl.hard >= 2**64 - 1 else rl.hard
        try:
            resource.setrlimit(which, (soft, hard))
        except (OSError, ValueError) as e:
            raise OSError(getattr(e, "errno", errno.EPERM) or errno.EPERM,
                          f"setting {rl.type} to soft {rl.soft} hard {rl.hard}: {e}") from e


def set_scheduling(process: Process) -> None:
    """ioPriority and scheduler (policy, nice, priority) of the process."""
    if process.io_priority is not None:
        io = process.io_priority
        libc.ioprio_set(libc.IOPRIO_CLASSES[io.io_class], io.priority)
    if process.scheduler is not None:
        s = process.scheduler
        os.sched_setscheduler(0, getattr(os, s.policy), os.sched_param(s.priority))
        if s.policy in ("SCHED_OTHER", "SCHED_BATCH", "SCHED_IDLE") and s.nice:
            os.setpriority(os.PRIO_PROCESS, 0, s.nice)


def set_cpu_affinity(cpus: tuple[int, ...]) -> None:
    if cpus:
        os.sched_setaffinity(0, cpus)


def set_oom_score_adj(value: int | None) -> int | None:
    """Write oom_score_adj; lowering it below our own needs CAP_SYS_RESOURCE, so on
    EACCES/EPERM keep the current (lowest allowed) value. Returns the value in effect."""
    if value is None:
        return None
    path = "/proc/self/oom_score_adj"
    try:
        with open(path, "w") as f:
            f.write(str(value))
        return value
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM):
            raise
        with open(path) as f:
            return int(f.read())


def check_apparmor(profile: str) -> None:
    """Raise SecurityError when a profile is requested and AppArmor is not enabled."""
    if not profile:
        return
    try:
        with open(APPARMOR_ENABLED) as f:
            enabled = f.read().strip() == "Y"
    except OSError:
        enabled = False
    if not enabled:
        raise SecurityError(f"apparmor profile {profile!r} requested but AppArmor is not "
                            "enabled on this host")


def apply_apparmor(profile: str) -> None:
    """Ask the kernel to switch to profile at the next execve."""
    if not profile:
        return
    for path in ("/proc/self/attr/apparmor/exec", "/proc/self/attr/exec"):
        try:
            with open(path, "w") as f:
                f.write(f"exec {profile}")
            return
        except FileNotFoundError:
            continue


def set_personality(p: Personality | None) -> None:
    if p is not None:
        libc.personality(libc.PER_LINUX32 if p.domain == "LINUX32" else libc.PER_LINUX)


def set_user(process: Process) -> None:
    """Groups, gid, uid and capabilities, in runc's order (bounding set needs CAP_SETPCAP, so
    before setuid; KEEPCAPS carries the permitted set across it)."""
    u = process.user
    m = None
    if process.capabilities is not None:
        c = process.capabilities
        m = caps.masks(c.bounding, c.effective, c.permitted, c.inheritable, c.ambient)
        caps.apply_bounding(m)
        caps.keep_caps(True)
    try:
        os.setgroups(list(u.additional_gids))
    except PermissionError:
        if u.additional_gids:  # setgroups may be denied in a user namespace
            raise
    os.setresgid(u.gid, u.gid, u.gid)
    os.setresuid(u.uid, u.uid, u.uid)
    if m is not None:
        caps.keep_caps(False)
        caps.apply_sets(m)


def set_no_new_privs() -> None:
    libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)


def environment(process: Process) -> dict[str, str]:
    """process.env as a dict, with HOME from the container's /etc/passwd when not given."""
    env = dict(e.split("=", 1) for e in process.env)
    if "HOME" not in env:
        env["HOME"] = _home_of(process.user.uid)
    return env


def _home_of(uid: int) -> str:
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def find_program(name: str, env: dict[str, str]) -> str:
    """The executable for args[0], looked up in the container's PATH when it has no slash.

    Raises FileNotFoundError / PermissionError naming the program.
    """
    if "/" in name:
        candidates = [name]
    else:
        candidates = [os.path.join(d or ".", name) for d in env.get("PATH", DEFAULT_PATH)
                      .split(":")]
    for path in candidates:
        if os.path.isfile(path):
            if os.access(path, os.X_OK):
                return path
            if "/" in name:
                raise PermissionError(errno.EACCES, f"{name}: permission denied")
    raise FileNotFoundError(errno.ENOENT, f"executable file {name!r} not found in $PATH "
                            "of the container")


def setup_console(sock: socket.socket, size: ConsoleSize | None) -> None:
    """Create a pty in the container, send its master over the console socket (SCM_RIGHTS, as
    runc does: one message whose data is the pty name), make the slave our controlling
    terminal and stdio."""
    master, slave = os.openpty()
    try:
        if size is not None and size.height and size.width:
            fcntl.ioctl(master, termios.TIOCSWINSZ,
                        struct.pack("HHHH", size.height, size.width, 0, 0))
        socket.send_fds(sock, [b"/dev/ptmx"], [master])
    finally:
        os.close(master)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def connect_console(path: str) -> socket.socket:
    """Connect to the console socket (a host path: done before pivot_root)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with short_path(path) as reachable:
            sock.connect(reachable)
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"connecting to console socket {path}: {e.strerror}") from e
    return sock


def dup_stdio(stdin: int | None, stdout: int | None, stderr: int | None) -> None:
    """Make the given fds 0, 1 and 2 (dup2 leaves them inheritable)."""
    fds = [stdin, stdout, stderr]
    # dup everything above 2 first, so dup2 onto 0/1/2 cannot clobber a source still needed
    safe = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) if fd is not None else None for fd in fds]
    for target, fd in enumerate(safe):
        if fd is not None:
            os.dup2(fd, target)
            os.close(fd)


def pass_fds(preserved: tuple[int, ...], keep: int | None = None) -> None:
    """Before exec: make ``preserved[i]`` fd 3+i (inheritable) and close every other fd from 3
    up but ``keep``, which must be above them (so nothing of the runtime leaks in)."""
    first = 3 + len(preserved)
    # dup everything above the targets first, so no dup2 clobbers a source still needed
    safe = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, first) for fd in preserved]
    for target, fd in enumerate(safe, start=3):
        os.dup2(fd, target)  # dup2's copy survives execve
        os.close(fd)
    end = _max_fd()
    if keep is not None and keep >= first:
        os.closerange(first, keep)
        first = keep + 1
    os.closerange(first, end)


def _max_fd() -> int:
    try:
        return max(int(n) for n in os.listdir("/proc/self/fd")) + 1
    except (OSError, ValueError):
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
