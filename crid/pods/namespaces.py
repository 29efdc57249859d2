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
"""

from __future__ import annotations

import errno
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from crid.errors import Internal, InvalidArgument
from crid.network import rtnl
from runtime import libc

KINDS = ("net", "ipc", "uts")
_FLAGS = {"net": libc.CLONE_NEWNET, "ipc": libc.CLONE_NEWIPC, "uts": libc.CLONE_NEWUTS}


class NamespaceError(Internal):
    """A namespace could not be created, configured or released."""


@dataclass(frozen=True)
class PinRequest:
    """Which namespaces to create for a pod, and what to set inside them."""

    ns_dir: Path
    kinds: tuple[str, ...]           # subset of KINDS; the others stay the host's
    hostname: str = ""               # set in the new UTS namespace
    sysctls: tuple[tuple[str, str], ...] = ()  # (path under /proc/sys, value)


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
    if req.hostname and "uts" in req.kinds:
        libc.sethostname(req.hostname)
    if "net" in req.kinds:
        with rtnl.Rtnl() as rt:  # a socket belongs to the netns of the thread making it
            rt.run(rtnl.set_up("lo"))
    for path, value in req.sysctls:
        try:
            with open(f"/proc/sys/{path}", "w") as f:
                f.write(value)
        except OSError as e:
            raise _SysctlRefused(path) from e


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
        t = threading.Thread(target=_catching, args=(box, req, paths), name="pod-netns",
                             daemon=True)
        t.start()
        t.join()
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
            while is_pinned(path):
                try:
                    libc.umount2(str(path), libc.MNT_DETACH)
                except OSError as e:
                    if e.errno in (errno.EINVAL, errno.ENOENT):
                        break
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


def _catching(box: list[BaseException], req: PinRequest, paths: dict[str, str]) -> None:
    try:
        _make_and_pin(req, paths)
    except BaseException as e:  # handed to the caller's thread
        box.append(e)
