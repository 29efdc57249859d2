"""What a create request names on the host, resolved and checked before anything is made:
mount sources, devices, Localhost seccomp profiles, the image's users, the log path, the
container cgroup and the namespaces the pod imposes."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path
from typing import Any

from crid.containers.model import (
    ContainerRequest,
    DeviceRequest,
    Namespaces,
    NsMode,
    ProfileKind,
    UserNs,
)
from crid.containers.seams import PodForContainers
from crid.containers.spec import HostDevice
from crid.containers.users import UserDB
from crid.errors import FailedPrecondition, InvalidArgument, NotFound
from crid.runtime_info import handler_features
from runtime.api import SpecError, expand_slice

MAX_PROFILE_BYTES = 1 << 20


def check_mount_sources(req: ContainerRequest, forbidden_roots: tuple[Path, ...],
                        volume_root: Path | None = None) -> None:
    """Host paths of the request's mounts exist and lie outside crid's own state, but for a
    volume's data (`<volume_root>/<name>/_data` and below; never its metadata).

    Raises:
        NotFound: a source does not exist; InvalidArgument: it is inside crid's state, or
        recursive read-only is asked for where the kernel cannot (no mount_setattr).
    """
    for m in req.mounts:
        if m.recursive_read_only and not handler_features().recursive_read_only_mounts:
            raise InvalidArgument(f"mount {m.container_path!r}: recursive read-only mounts "
                                  "need mount_setattr(2), which this kernel lacks (see Status)")
        src = Path(os.path.realpath(m.host_path))
        if not src.exists():
            raise NotFound(f"mount {m.container_path!r}: host path {m.host_path!r} "
                           "does not exist")
        if any(src == r or r in src.parents for r in forbidden_roots) and \
                not _volume_data(src, volume_root):
            raise InvalidArgument(f"mount {m.container_path!r}: host path "
                                   f"{m.host_path!r} is inside crid's own state")


def _volume_data(src: Path, volume_root: Path | None) -> bool:
    if volume_root is None:
        return False
    try:
        parts = src.relative_to(volume_root.resolve()).parts
    except ValueError:
        return False
    return len(parts) >= 2 and not parts[0].startswith(".") and parts[1] == "_data"


def host_device(d: DeviceRequest) -> HostDevice:
    """The host device node behind a CRI device request.

    Raises:
        NotFound: no such node; InvalidArgument: not a device, or bad permissions.
    """
    try:
        st = os.stat(d.host_path)
    except OSError as e:
        raise NotFound(f"device {d.host_path!r}: {e.strerror}") from e
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise InvalidArgument(f"device {d.host_path!r} is not a device node")
    if set(d.permissions) - set("rwm"):
        raise InvalidArgument(f"device {d.host_path!r}: permissions {d.permissions!r}")
    kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
    return HostDevice(d.container_path or d.host_path, kind, os.major(st.st_rdev),
                      os.minor(st.st_rdev), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                      d.permissions)


def localhost_profile(req: ContainerRequest) -> dict[str, Any] | None:
    """The Localhost seccomp profile the request names: any absolute path to a regular,
    readable JSON file, as containerd and CRI-O take it (the kubelet computes it under its
    own --root-dir, which operators move).

    Raises:
        InvalidArgument: a relative path, a missing or unreadable file, not a regular file, not
        a JSON object, too big; each naming the path.
    """
    prof = req.security.seccomp
    if prof.kind != ProfileKind.LOCALHOST or req.security.privileged:
        return None
    ref = prof.localhost_ref
    if not os.path.isabs(ref):
        raise InvalidArgument(f"seccomp profile {ref!r}: not an absolute path")
    data = _read_regular(ref, MAX_PROFILE_BYTES + 1)
    try:
        profile = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidArgument(f"seccomp profile {ref!r}: not JSON: {e}") from e
    if len(data) > MAX_PROFILE_BYTES or not isinstance(profile, dict):
        raise InvalidArgument(f"seccomp profile {ref!r}: not a seccomp profile object")
    return profile


def _read_regular(path: str, limit: int) -> bytes:
    """Up to limit bytes of a regular file. O_NONBLOCK: a FIFO planted at the path must not
    hang the request; it is refused after the fstat.

    Raises:
        InvalidArgument: missing, unreadable, or not a regular file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise InvalidArgument(f"seccomp profile {path!r}: {e.strerror}") from e
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise InvalidArgument(f"seccomp profile {path!r}: not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read(limit)
    except OSError as e:
        raise InvalidArgument(f"seccomp profile {path!r}: {e.strerror}") from e
    finally:
        os.close(fd)


def log_path(log_directory: str, log_path: str) -> str:
    if not log_path:
        return ""
    if not log_directory:
        raise InvalidArgument("container log_path given but the pod has no log_directory")
    full = os.path.normpath(os.path.join(log_directory, log_path))
    if not full.startswith(os.path.normpath(log_directory) + os.sep):
        raise InvalidArgument(f"log path {log_path!r} leaves the pod log directory")
    return full


def cgroups_path(pod_cgroup: str, cid: str, driver: str) -> str:
    """The OCI `linux.cgroupsPath` of container `cid` in the pod whose cgroup is `pod_cgroup`
    (its path below the hierarchy roots, as `PodSandbox.cgroup` records it).

    systemd driver, with the pod cgroup a slice (as the pods' systemd layout makes it):
    `<pod slice>:crid:<cid>`, as CRI-O and containerd write it (`...-pod<uid>.slice:crio:<id>`);
    the runtime expands it to `<pod cgroup>/crid-<cid>.scope` on cgroupfs. Otherwise (cgroupfs
    driver, or a pod made under the other driver before a restart) `/<pod cgroup>/crid-<cid>`.
    Either way the container's cgroup lies inside its pod's.
    """
    pod_cgroup = "/" + pod_cgroup.strip("/")
    unit = os.path.basename(pod_cgroup)
    if driver == "systemd" and unit.endswith(".slice") and _slice_path(unit) == pod_cgroup:
        return f"{unit}:crid:{cid}"
    return f"{pod_cgroup.rstrip('/')}/crid-{cid}"


def _slice_path(unit: str) -> str | None:
    try:
        return expand_slice(unit)
    except SpecError:
        return None


def user_db(rootfs: Path) -> UserDB:
    from runtime.linux.securejoin import secure_join

    def read(rel: str) -> str:
        try:
            with open(secure_join(str(rootfs), rel), "rb") as fh:
                return fh.read(1 << 20).decode(errors="replace")
        except OSError:
            return ""

    return UserDB.parse(read("etc/passwd"), read("etc/group"))


def with_pod_namespaces(req: ContainerRequest, pod: PodForContainers) -> ContainerRequest:
    """Network and IPC always follow the pod; a POD pid namespace needs the pod to have one.
    The user namespace is the pod's: a request that names one must name the pod's.

    Raises:
        InvalidArgument: the container's userns_options differ from its pod's.
    """
    ns = req.security.namespaces
    if ns.userns is not None and ns.userns != pod.userns:
        # as containerd: the kubelet sends the pod's options with every container
        raise InvalidArgument(
            f"namespace_options.userns_options {_userns_text(ns.userns)} differ from the "
            f"pod sandbox's {_userns_text(pod.userns)}: a container joins its pod's user "
            "namespace")
    pid = ns.pid
    if pod.host_pid:
        pid = NsMode.NODE
    elif pid == NsMode.POD and not pod.shared_pid:
        pid = NsMode.CONTAINER
    fixed = Namespaces(network=NsMode.NODE if pod.host_network else NsMode.POD,
                       ipc=NsMode.NODE if pod.host_ipc else NsMode.POD, pid=pid,
                       target_id=ns.target_id)
    return dataclasses.replace(req, security=dataclasses.replace(req.security,
                                                                 namespaces=fixed))


def check_reachable_from_userns(root: Path) -> None:
    """A user-namespaced container's init is a host uid of its pod's range, not root, when
    it mounts its rootfs by path: every directory down to the containers' root must let
    others search it (crid makes its own 0711; a root under a 0700 directory fails here
    instead of as EACCES from the runtime).

    Raises:
        FailedPrecondition: names the first directory that others may not search.
    """
    for d in (root, *root.parents):
        try:
            mode = os.stat(d).st_mode
        except OSError as e:
            raise FailedPrecondition(f"user-namespaced containers: {d}: {e.strerror}") from e
        if not mode & stat.S_IXOTH:
            raise FailedPrecondition(
                f"user-namespaced containers cannot reach their rootfs under {root}: {d} "
                f"is mode {stat.S_IMODE(mode):04o}; others need search permission (0711)")


def _userns_text(u: UserNs) -> str:
    def maps(ms: tuple[tuple[int, int, int], ...]) -> str:
        return ",".join(f"{c}:{h}:{n}" for c, h, n in ms) or "none"
    return f"(mode {u.mode.name}, uids {maps(u.uids)}, gids {maps(u.gids)})"
