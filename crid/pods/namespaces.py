"""Pod namespaces pinned by bind mounts (`<pod_dir>/ns/{net,ipc,uts}`), so they outlive every
process and the daemon.

The gRPC process is multi-threaded and must neither fork nor setns, so the namespaces are made by
one short-lived util-linux `unshare --net=FILE --ipc=FILE --uts=FILE` (it bind-mounts
/proc/<child>/ns/* onto the files from the parent, in crid's own mount namespace) running a
static busybox shell inside them that sets the hostname, brings loopback up and writes the pod's
sysctls. Unpinning is a lazy umount from the daemon itself (no fork needed).
"""

from __future__ import annotations

import errno
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from crid.errors import Internal, InvalidArgument
from runtime import libc

KINDS = ("net", "ipc", "uts")

# Runs inside the new namespaces. Arguments: hostname, "1" to bring lo up, then (proc path,
# value) pairs. Exit code 3 means a sysctl could not be written; its name is on stderr.
_SETUP = r"""
[ -n "$1" ] && { hostname "$1" || exit 2; }
shift
[ "$1" = 1 ] && { ip link set lo up || exit 2; }
shift
while [ $# -gt 1 ]; do
  printf '%s' "$2" 2>/dev/null > "/proc/sys/$1" || { echo "$1" >&2; exit 3; }
  shift 2
done
"""


class NamespaceError(Internal):
    """A namespace could not be created, configured or released."""


@dataclass(frozen=True)
class PinRequest:
    """Which namespaces to create for a pod, and what to set inside them."""

    ns_dir: Path
    kinds: tuple[str, ...]           # subset of KINDS; the others stay the host's
    hostname: str = ""               # set in the new UTS namespace
    sysctls: tuple[tuple[str, str], ...] = ()  # (path under /proc/sys, value)


@dataclass(frozen=True)
class Tools:
    unshare: str = "/usr/bin/unshare"
    busybox: str = "/bin/busybox"


class NamespacePinner:
    """Creates and releases pinned namespaces with short-lived non-Python processes."""

    def __init__(self, tools: Tools = Tools()) -> None:
        self._tools = tools

    def pin(self, req: PinRequest) -> dict[str, str]:
        """Creates the namespaces in req.kinds, pinned at ns_dir/<kind>; returns kind -> path.

        Raises:
            InvalidArgument: a sysctl does not exist or refuses the value.
            NamespaceError: unshare or the setup shell failed.
        """
        if not req.kinds:
            return {}
        req.ns_dir.mkdir(parents=True, exist_ok=True)
        paths = {k: str(req.ns_dir / k) for k in req.kinds}
        for p in paths.values():
            Path(p).touch(mode=0o444)
        flags = [f"--{k}={p}" for k, p in paths.items()]
        args = [self._tools.unshare, *flags, "--", self._tools.busybox, "sh", "-c", _SETUP,
                "sh", req.hostname, "1" if "net" in req.kinds else "0"]
        for path, value in req.sysctls:
            args += [path, value]
        res = subprocess.run(args, capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL, close_fds=True)
        if res.returncode != 0:
            self.unpin(req.ns_dir)  # unshare pins before the setup shell runs
        if res.returncode == 3:
            key = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "?"
            raise InvalidArgument(f"sysctl {key.replace('/', '.')!r}: the kernel refused it "
                                  "(unknown in a pod namespace, or a bad value)")
        if res.returncode != 0:
            raise NamespaceError(f"creating {','.join(req.kinds)} namespaces in {req.ns_dir}: "
                                 f"unshare exited {res.returncode}: {res.stderr.strip()[:500]}")
        return paths

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
