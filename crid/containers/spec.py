"""OCI runtime-spec generation: a pure function from a CRI container request to config.json.

Everything the function needs that lives on disk (the image's users, host devices, a Localhost
seccomp profile) is resolved by the caller first and passed in, so the rules below are tested
without root, an image or a daemon.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crid.containers import capabilities
from crid.containers.model import (
    ContainerRequest,
    ImageConfig,
    MountRequest,
    NsMode,
    ProfileKind,
    Propagation,
)
from crid.containers.seccomp_default import default_profile
from crid.containers.users import ResolvedUser
from crid.errors import InvalidArgument
from crid.resources import Resources

OCI_VERSION = "1.2.0"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# CRI-O's and containerd's defaults for unprivileged containers.
DEFAULT_MASKED_PATHS = (
    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)
DEFAULT_READONLY_PATHS = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)
# Devices every container may use: (type, major, minor) with rwm access.
DEFAULT_DEVICE_RULES = (
    ("c", 1, 3), ("c", 1, 5), ("c", 1, 7), ("c", 1, 8), ("c", 1, 9), ("c", 5, 0), ("c", 5, 1),
    ("c", 5, 2), ("c", 136, None), ("c", 10, 200),
)
# Annotations containerd sets, which monitoring and CNI plugins read.
ANN_PREFIX = "io.kubernetes.cri."


@dataclass(frozen=True)
class PodContext:
    """What a container takes from its pod sandbox. An empty namespace path means the host's."""

    pod_id: str
    name: str
    namespace: str
    uid: str
    hostname: str
    netns_path: str = ""
    ipcns_path: str = ""
    utsns_path: str = ""
    pidns_path: str = ""
    userns_path: str = ""  # the pod's user namespace (hostUsers: false); "" is the host's
    userns_root: tuple[int, int] = (0, 0)  # host uid, gid of its root (container id 0)
    resolv_conf: str = ""
    hosts: str = ""
    hostname_file: str = ""
    shm: str = ""


@dataclass(frozen=True)
class HostDevice:
    """A host device node resolved by the caller (stat of host_path)."""

    container_path: str
    kind: str  # "c" or "b"
    major: int
    minor: int
    file_mode: int
    uid: int
    gid: int
    permissions: str


@dataclass(frozen=True)
class SpecInputs:
    container_id: str
    request: ContainerRequest
    image: ImageConfig
    image_name: str
    image_id: str
    pod: PodContext
    user: ResolvedUser
    rootfs: str
    cgroups_path: str
    devices: tuple[HostDevice, ...] = ()
    localhost_seccomp: dict[str, Any] | None = None
    target_pid: int = 0  # the init pid of the TARGET container for NamespaceMode.TARGET
    cgroup_v2: bool = False
    apparmor_enabled: bool = False
    grantable_caps: frozenset[str] = frozenset(capabilities.ALL_CAPS)  # the engine's CapBnd


def generate_spec(inp: SpecInputs) -> dict[str, Any]:
    """The runtime-spec config.json for one container.

    Raises:
        InvalidArgument: no command, an unknown capability, a bad mount or profile request.
    """
    sec = inp.request.security
    caps = capabilities.container_caps(sec.caps_add, sec.caps_drop, sec.privileged,
                                       inp.grantable_caps)
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": _process(inp, caps),
        "root": {"path": inp.rootfs, "readonly": sec.readonly_rootfs},
        "mounts": _mounts(inp),
        "annotations": _annotations(inp),
        "linux": _linux(inp, caps),
    }
    if not inp.pod.utsns_path and sec.namespaces.network != NsMode.NODE:
        spec["hostname"] = inp.pod.hostname
    return spec


def process_args(req: ContainerRequest, image: ImageConfig) -> list[str]:
    """command/args against the image's Entrypoint/Cmd, as the kubelet defines them."""
    command, args = list(req.command), list(req.args)
    if not command:
        command = list(image.entrypoint)
        if not args:
            args = list(image.cmd)
    argv = command + args
    if not argv:
        raise InvalidArgument(f"container {req.name!r}: no command given and the image has no "
                              "Entrypoint or Cmd")
    return argv


def merge_env(image_env: tuple[str, ...], env: tuple[tuple[str, str], ...],
              hostname: str) -> list[str]:
    """PATH default, HOSTNAME, the image's Env, then the request's (later keys win in place)."""
    merged: dict[str, str] = {"PATH": DEFAULT_PATH, "HOSTNAME": hostname}
    for item in image_env:
        key, _, value = item.partition("=")
        merged[key] = value
    for key, value in env:
        if not key or "=" in key or "\0" in key + value:
            raise InvalidArgument(f"environment variable {key!r} is not a valid name")
        merged[key] = value
    return [f"{k}={v}" for k, v in merged.items()]


def _process(inp: SpecInputs, caps: list[str]) -> dict[str, Any]:
    req, sec, user = inp.request, inp.request.security, inp.user
    ambient = [capabilities.normalize(c) for c in sec.caps_ambient]
    process: dict[str, Any] = {
        "terminal": req.tty,
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": list(user.additional_gids)},
        "args": process_args(req, inp.image),
        "env": merge_env(inp.image.env, req.env, inp.pod.hostname),
        "cwd": req.working_dir or inp.image.working_dir or "/",
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps,
                         "inheritable": [], "ambient": [c for c in ambient if c in caps]},
        "noNewPrivileges": sec.no_new_privs and not sec.privileged,
        "oomScoreAdj": req.resources.oom_score_adj,
    }
    if user.username:
        process["user"]["username"] = user.username
    profile = _apparmor(inp)
    if profile:
        process["apparmorProfile"] = profile
    return process


def _apparmor(inp: SpecInputs) -> str:
    sec = inp.request.security
    if sec.privileged or sec.apparmor.kind == ProfileKind.UNCONFINED:
        return ""
    if sec.apparmor.kind == ProfileKind.LOCALHOST:
        # Asked for explicitly: the runtime reports clearly when AppArmor is not enabled.
        return sec.apparmor.localhost_ref
    return "crid-default" if inp.apparmor_enabled else ""


def _mounts(inp: SpecInputs) -> list[dict[str, Any]]:
    mounts = _all_mounts(inp)
    if inp.pod.userns_path:
        # Host files reach a user-namespaced container through idmapped binds, mapped like
        # its user namespace (host uid 0 is the container's 0): nothing is chowned. A
        # recursive bind is idmapped recursively (ridmap), or its submounts (a tmpfs or a
        # bind inside a volume) would show every owner as the overflow id 65534.
        for m in mounts:
            if m["type"] == "bind":
                m["options"].append("ridmap" if "rbind" in m["options"] else "idmap")
    return mounts


def _all_mounts(inp: SpecInputs) -> list[dict[str, Any]]:
    sec, pod = inp.request.security, inp.pod
    ro_sys = [] if sec.privileged else ["ro"]
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                     "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", *ro_sys]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", *(ro_sys or ["rw"])]},
    ]
    user_paths = {m.container_path.rstrip("/") or "/" for m in inp.request.mounts}
    for dest, src in (("/etc/hosts", pod.hosts), ("/etc/resolv.conf", pod.resolv_conf),
                      ("/etc/hostname", pod.hostname_file)):
        if src and dest not in user_paths:
            ro = ["ro"] if sec.readonly_rootfs else []
            mounts.append({"destination": dest, "type": "bind", "source": src,
                           "options": ["rbind", "rprivate", *ro]})
    if pod.shm and "/dev/shm" not in user_paths:
        mounts.append({"destination": "/dev/shm", "type": "bind", "source": pod.shm,
                       "options": ["rbind", "rprivate", "nosuid", "nodev", "noexec"]})
    elif "/dev/shm" not in user_paths:
        mounts.append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                       "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]})
    mounts += [_cri_mount(m) for m in sorted(inp.request.mounts, key=_mount_depth)]
    return mounts


def _mount_depth(m: MountRequest) -> int:
    # Parents before children, so a mount at /a/b is not hidden by a later one at /a.
    return len([p for p in m.container_path.split("/") if p])


_ALLOWED_OPTIONS = {"noexec", "nodev", "nosuid", "noatime", "nodiratime", "relatime"}


def _cri_mount(m: MountRequest) -> dict[str, Any]:
    if not m.container_path.startswith("/"):
        raise InvalidArgument(f"mount {m.container_path!r}: container path must be absolute")
    if not m.host_path.startswith("/"):
        raise InvalidArgument(f"mount {m.container_path!r}: host path {m.host_path!r} must "
                              "be absolute")
    bad = [o for o in m.options if o not in _ALLOWED_OPTIONS]
    if bad:
        raise InvalidArgument(f"mount {m.container_path!r}: unsupported mount options {bad}")
    options = ["rbind", m.propagation.value]
    if m.recursive_read_only:
        if not m.readonly or m.propagation != Propagation.PRIVATE:
            raise InvalidArgument(f"mount {m.container_path!r}: recursive read-only needs "
                                  "readonly and private propagation")
        options.append("rro")
    if m.readonly:
        options.append("ro")
    return {"destination": m.container_path, "type": "bind", "source": m.host_path,
            "options": options + list(m.options)}


def _annotations(inp: SpecInputs) -> dict[str, str]:
    req, pod = inp.request, inp.pod
    ann = dict(req.annotations)
    ann.update({
        ANN_PREFIX + "container-type": "container",
        ANN_PREFIX + "container-name": req.name,
        ANN_PREFIX + "sandbox-id": pod.pod_id,
        ANN_PREFIX + "sandbox-name": pod.name,
        ANN_PREFIX + "sandbox-namespace": pod.namespace,
        ANN_PREFIX + "sandbox-uid": pod.uid,
        ANN_PREFIX + "image-name": inp.image_name,
    })
    return ann


def _linux(inp: SpecInputs, caps: list[str]) -> dict[str, Any]:
    sec = inp.request.security
    linux: dict[str, Any] = {
        "namespaces": _namespaces(inp),
        "cgroupsPath": inp.cgroups_path,
        "resources": _resources(inp.request.resources, inp, sec.privileged),
        "devices": [_device(d) for d in inp.devices],
    }
    if not sec.privileged:
        linux["maskedPaths"] = list(sec.masked_paths or DEFAULT_MASKED_PATHS)
        linux["readonlyPaths"] = list(sec.readonly_paths or DEFAULT_READONLY_PATHS)
    seccomp = _seccomp(inp, caps)
    if seccomp is not None:
        linux["seccomp"] = seccomp
    propagation = _rootfs_propagation(inp.request.mounts)
    if propagation:
        linux["rootfsPropagation"] = propagation
    return linux


def _rootfs_propagation(mounts: tuple[MountRequest, ...]) -> str:
    """containerd's rule: a bidirectional volume needs the container's whole tree rshared (a
    slave copy of the volume would not send its mounts back to the host); host-to-container
    needs rslave, the runtime's default, said explicitly as containerd does."""
    kinds = {m.propagation for m in mounts}
    if Propagation.BIDIRECTIONAL in kinds:
        return "rshared"
    if Propagation.HOST_TO_CONTAINER in kinds:
        return "rslave"
    return ""


def _namespaces(inp: SpecInputs) -> list[dict[str, str]]:
    ns, pod = inp.request.security.namespaces, inp.pod
    out = [{"type": "mount"}]

    def join(kind: str, path: str) -> None:
        out.append({"type": kind, "path": path} if path else {"type": kind})

    if pod.userns_path:
        join("user", pod.userns_path)

    if ns.network != NsMode.NODE:
        join("network", pod.netns_path)
        join("uts", pod.utsns_path)
    if ns.ipc != NsMode.NODE:
        join("ipc", pod.ipcns_path)
    if ns.pid == NsMode.POD:
        join("pid", pod.pidns_path)
    elif ns.pid == NsMode.TARGET:
        if inp.target_pid <= 0:
            raise InvalidArgument("pid namespace TARGET needs a running target container")
        join("pid", f"/proc/{inp.target_pid}/ns/pid")
    elif ns.pid == NsMode.CONTAINER:
        join("pid", "")
    if inp.cgroup_v2:
        join("cgroup", "")
    return out


def _resources(r: Resources, inp: SpecInputs, privileged: bool) -> dict[str, Any]:
    devices: list[dict[str, Any]] = [{"allow": privileged, "access": "rwm"}]
    if not privileged:
        devices += [{"allow": True, "type": t, "major": ma, "access": "rwm",
                     **({"minor": mi} if mi is not None else {})}
                    for t, ma, mi in DEFAULT_DEVICE_RULES]
        devices += [{"allow": True, "type": d.kind, "major": d.major, "minor": d.minor,
                     "access": d.permissions} for d in inp.devices]
    return {"devices": devices, **_limits(r)}


def resources_oci(r: Resources, current: dict[str, Any]) -> dict[str, Any]:
    """`linux.resources` for an UpdateContainerResources: the new limits, the device rules
    of `current` (the container's resources so far)."""
    return {"devices": current.get("devices", []), **_limits(r)}


def _limits(r: Resources) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cpu = {k: v for k, v in (("shares", r.cpu_shares), ("quota", r.cpu_quota),
                             ("period", r.cpu_period), ("cpus", r.cpuset_cpus),
                             ("mems", r.cpuset_mems)) if v}
    if cpu:
        out["cpu"] = cpu
    if r.memory_limit:
        out["memory"] = {"limit": r.memory_limit}
        if r.memory_swap_limit:
            out["memory"]["swap"] = r.memory_swap_limit
    if r.hugepages:
        out["hugepageLimits"] = [{"pageSize": s, "limit": n} for s, n in r.hugepages]
    if r.unified:
        out["unified"] = dict(r.unified)
    return out


def _device(d: HostDevice) -> dict[str, Any]:
    return {"path": d.container_path, "type": d.kind, "major": d.major, "minor": d.minor,
            "fileMode": d.file_mode, "uid": d.uid, "gid": d.gid}


def _seccomp(inp: SpecInputs, caps: list[str]) -> dict[str, Any] | None:
    sec = inp.request.security
    if sec.privileged or sec.seccomp.kind == ProfileKind.UNCONFINED:
        return None
    if sec.seccomp.kind == ProfileKind.LOCALHOST:
        if inp.localhost_seccomp is None:
            raise InvalidArgument(f"seccomp profile {sec.seccomp.localhost_ref!r} was not loaded")
        return inp.localhost_seccomp
    return default_profile(caps)
