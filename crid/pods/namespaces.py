"""Pod namespaces pinned by bind mounts (`<pod_dir>/ns/{net,ipc,uts}`), so they outlive every
process and the daemon.

The gRPC process is multi-threaded and must neither fork nor move its own threads, so the
namespaces are made by a short-lived thread: unshare(2) of network, IPC and UTS namespaces
moves only the calling thread (unlike mount or user namespaces, they need no single-threaded
process), and the thread bind-mounts its `/proc/thread-self/ns/*` onto the pin files (in the
daemon's own mount namespace, which it still shares), sets the hostname, brings loopback up and
writes the pod's sysctls (`/proc/sys` resolves to the calling thread's namespaces), then ends.
Nothing is spawned: this used to be `unshare` + a busybox shell + `hostname` + `ip`, four
processes per pod. Unpinning is a lazy umount from the daemon itself.

A pod with a user namespace of its own (hostUsers: false) is the exception: the kernel makes a
user namespace only for a single-threaded process, and the pod's network, IPC and UTS
namespaces must be owned by it (so that its root may mount sysfs, mqueue and proc in them), so
they are made together by one util-linux `unshare --user --net --ipc --uts cat`: once `cat`
echoes a line, the namespaces exist; the daemon writes the id maps (as the host's root,
which may map any range), pins all four from /proc/PID/ns and lets `cat` end. The thread then
enters the pinned namespaces (setns of net, IPC and UTS works per thread) to configure them.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from crid.errors import Internal, InvalidArgument
from crid.network import rtnl
from crid.pods.model import IdMapping, UserNamespace
from runtime.linux import libc
from runtime.linux.mounts import unmount_all
from runtime.linux.netns import enter, in_own_thread

# "user" last: it is unpinned after the namespaces it owns.
KINDS = ("net", "ipc", "uts", "user")
_FLAGS = {"net": libc.CLONE_NEWNET, "ipc": libc.CLONE_NEWIPC, "uts": libc.CLONE_NEWUTS}
UNSHARE = "/usr/bin/unshare"
CAT = "/bin/cat"
USERNS_TIMEOUT = 10.0


class NamespaceError(Internal):
    """A namespace could not be created, configured or released."""


@dataclass(frozen=True)
class PinRequest:
    """Which namespaces to create for a pod, and what to set inside them."""

    ns_dir: Path
    kinds: tuple[str, ...]           # subset of KINDS; the others stay the host's
    hostname: str = ""               # set in the new UTS namespace
    sysctls: tuple[tuple[str, str], ...] = ()  # (path under /proc/sys, value)
    userns: UserNamespace | None = None  # "user" in kinds: owns the others, mapped so


class _SysctlRefused(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def _make_and_pin(req: PinRequest, paths: dict[str, str]) -> None:
    """Runs in a thread of its own that ends right after: its namespaces are the pod's."""
    flags = 0
    for kind in req.kinds:
        flags |= _FLAGS[kind]
    libc.unshare(flags)
    for kind, path in paths.items():
        libc.mount(f"/proc/thread-self/ns/{kind}", path, None, libc.MS_BIND)
    _configure(req)


def _enter_and_configure(req: PinRequest, paths: dict[str, str]) -> None:
    """Runs in a thread of its own: joins the pinned namespaces (made in the pod's user
    namespace by `_pin_with_userns`), then configures them."""
    for kind in req.kinds:
        if kind in _FLAGS:
            enter(paths[kind], _FLAGS[kind])
    _configure(req, req.userns.uids[0].host_id if req.userns else None)


def _configure(req: PinRequest, ns_root: int | None = None) -> None:
    """Hostname, loopback up and sysctls, in the calling thread's (the pod's) namespaces;
    ``ns_root``: the host uid of the root of the user namespace that owns them."""
    if req.hostname and "uts" in req.kinds:
        libc.sethostname(req.hostname)
    if "net" in req.kinds:
        with rtnl.Rtnl() as rt:  # a socket belongs to the netns of the thread making it
            rt.run(rtnl.set_up("lo"))
    for path, value in req.sysctls:
        try:
            _write_sysctl(path, value, ns_root)
        except OSError as e:
            raise _SysctlRefused(path) from e


def _write_sysctl(path: str, value: str, ns_root: int | None) -> None:
    try:
        with open(f"/proc/sys/{path}", "w") as f:
            f.write(value)
        return
    except PermissionError:
        if ns_root is None:
            raise
    # The IPC and mqueue sysctls of a namespace owned by a user namespace are writable only
    # by that namespace's root: the kernel compares the euid (ipc_permissions), capabilities
    # over the namespace do not count. This thread (its own, ending right after) takes that
    # euid for the write; the process's other threads are untouched.
    libc.thread_seteuid(ns_root)
    try:
        with open(f"/proc/sys/{path}", "w") as f:
            f.write(value)
    finally:
        libc.thread_seteuid(0)


class NamespacePinner:
    """Creates and releases pinned namespaces without spawning processes."""

    def pin(self, req: PinRequest) -> dict[str, str]:
        """Creates the namespaces in req.kinds, pinned at ns_dir/<kind>; returns kind -> path.

        Raises:
            InvalidArgument: a sysctl does not exist or refuses the value.
            NamespaceError: a namespace could not be made, pinned or configured.
        """
        if not req.kinds:
            return {}
        req.ns_dir.mkdir(parents=True, exist_ok=True)
        paths = {k: str(req.ns_dir / k) for k in req.kinds}
        for p in paths.values():
            Path(p).touch(mode=0o444)
        box: list[BaseException] = []
        work = _make_and_pin
        if "user" in req.kinds:
            try:
                _pin_with_userns(req, paths)
            except (OSError, subprocess.SubprocessError, NamespaceError) as e:
                box.append(e)
            work = _enter_and_configure
        if not box:
            try:
                in_own_thread(lambda: work(req, paths), "pod-netns")
            except BaseException as e:  # noqa: BLE001 - undone and reported below
                box.append(e)
        if not box:
            return paths
        self.unpin(req.ns_dir)  # whatever was pinned before the failure
        err = box[0]
        if isinstance(err, _SysctlRefused):
            raise InvalidArgument(f"sysctl {err.path.replace('/', '.')!r}: the kernel refused "
                                  "it (unknown in a pod namespace, or a bad value)") from err
        raise NamespaceError(f"creating {','.join(req.kinds)} namespaces in {req.ns_dir}: "
                             f"{err}") from err

    def unpin(self, ns_dir: Path) -> None:
        """Unmounts and removes every pin in ns_dir; absent pins are fine (idempotent).

        Raises:
            NamespaceError: an unmount failed for another reason than "not mounted".
        """
        for kind in KINDS:
            path = ns_dir / kind
            if not path.exists():
                continue
            try:
                unmount_all(path, is_pinned)
            except OSError as e:
                raise NamespaceError(f"unpinning {path}: {e}") from e
            path.unlink(missing_ok=True)
        try:
            ns_dir.rmdir()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise NamespaceError(f"removing {ns_dir}: {e}") from e


def is_pinned(path: Path) -> bool:
    """Whether path is a live pin: a bind mount of a namespace file (nsfs has its own device,
    so the pin's st_dev differs from its directory's)."""
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev
    except OSError:
        return False


def id_map(maps: tuple[IdMapping, ...]) -> str:
    """uid_map/gid_map text: `container_id host_id length` lines."""
    return "".join(f"{m.container_id} {m.host_id} {m.length}\n" for m in maps)


def _pin_with_userns(req: PinRequest, paths: dict[str, str]) -> None:
    """The pod's user namespace and, owned by it, its other namespaces, made by one
    `unshare ... cat` (see the module docstring), mapped and pinned before `cat` ends.

    Raises NamespaceError (unshare failed), OSError (maps or pins), SubprocessError."""
    assert req.userns is not None
    flags = ["--user", *(f"--{k}" for k in req.kinds if k in _FLAGS)]
    proc = subprocess.Popen([UNSHARE, *flags, "--", CAT], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
                            cwd="/")
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        proc.stdin.write(b"x\n")
        proc.stdin.flush()
        if proc.stdout.readline() != b"x\n":  # EOF: unshare failed before exec'ing cat
            proc.wait(USERNS_TIMEOUT)
            err = proc.stderr.read().decode(errors="replace").strip()
            raise NamespaceError(f"unshare {' '.join(flags)}: exit {proc.returncode}: "
                                 f"{err[-300:]}")
        for name, maps in (("uid_map", req.userns.uids), ("gid_map", req.userns.gids)):
            with open(f"/proc/{proc.pid}/{name}", "w") as f:
                f.write(id_map(maps))
        for kind, path in paths.items():
            libc.mount(f"/proc/{proc.pid}/ns/{kind}", path, None, libc.MS_BIND)
    finally:
        proc.stdin.close()
        try:
            proc.wait(USERNS_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
