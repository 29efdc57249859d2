"""CRI container messages to the domain's ContainerRequest (protobuf stops here)."""

from __future__ import annotations

from crid.api import api_pb2 as pb
from crid.containers.model import (
    ContainerRequest,
    DeviceRequest,
    MountRequest,
    Namespaces,
    NsMode,
    Profile,
    ProfileKind,
    Propagation,
    Security,
    UserNs,
)
from crid.errors import InvalidArgument
from crid.resources import Resources

_NS = {pb.NamespaceMode.POD: NsMode.POD, pb.NamespaceMode.CONTAINER: NsMode.CONTAINER,
       pb.NamespaceMode.NODE: NsMode.NODE, pb.NamespaceMode.TARGET: NsMode.TARGET}
_PROPAGATION = {pb.MountPropagation.PROPAGATION_PRIVATE: Propagation.PRIVATE,
                pb.MountPropagation.PROPAGATION_HOST_TO_CONTAINER: Propagation.HOST_TO_CONTAINER,
                pb.MountPropagation.PROPAGATION_BIDIRECTIONAL: Propagation.BIDIRECTIONAL}
_PROFILE = {pb.SecurityProfile.ProfileType.RuntimeDefault: ProfileKind.RUNTIME_DEFAULT,
            pb.SecurityProfile.ProfileType.Unconfined: ProfileKind.UNCONFINED,
            pb.SecurityProfile.ProfileType.Localhost: ProfileKind.LOCALHOST}


def container_request(cfg: pb.ContainerConfig) -> ContainerRequest:
    """Checks required fields and converts.

    Raises:
        InvalidArgument: missing metadata or image, or a malformed field.
    """
    if not cfg.HasField("metadata") or not cfg.metadata.name:
        raise InvalidArgument("container config has no metadata name")
    if not cfg.image.image:
        raise InvalidArgument(f"container {cfg.metadata.name!r} names no image")
    linux = cfg.linux
    stop = pb.Signal.Name(cfg.stop_signal) if cfg.stop_signal else ""
    return ContainerRequest(
        name=cfg.metadata.name, attempt=cfg.metadata.attempt, image=cfg.image.image,
        command=tuple(cfg.command), args=tuple(cfg.args), working_dir=cfg.working_dir,
        env=tuple((kv.key, _text(kv.value, kv.key)) for kv in cfg.envs),
        mounts=tuple(_mount(m) for m in cfg.mounts),
        devices=tuple(DeviceRequest(d.container_path, d.host_path, d.permissions or "rwm")
                      for d in cfg.devices),
        labels=dict(cfg.labels), annotations=dict(cfg.annotations), log_path=cfg.log_path,
        stdin=cfg.stdin, stdin_once=cfg.stdin_once, tty=cfg.tty,
        resources=resources(linux.resources),
        security=_security(linux.security_context),
        stop_signal=stop.removeprefix("SIGNAL_") if stop != "SIGNAL_RUNTIME_DEFAULT" else "",
    )


def _text(value: bytes, key: str) -> str:
    # KeyValue.value is bytes on the wire; the OCI spec's env is text.
    try:
        return value.decode()
    except UnicodeDecodeError as e:
        raise InvalidArgument(f"environment variable {key!r} is not valid UTF-8") from e


def _mount(m: pb.Mount) -> MountRequest:
    if m.HasField("image") and m.image.image:
        raise InvalidArgument(f"mount {m.container_path!r}: image volumes are not supported yet")
    if m.uidMappings or m.gidMappings:
        raise InvalidArgument(f"mount {m.container_path!r}: id-mapped mounts are not supported")
    return MountRequest(m.container_path, m.host_path, m.readonly,
                        _PROPAGATION.get(m.propagation, Propagation.PRIVATE),
                        m.recursive_read_only, tuple(m.mount_options))


def resources(r: pb.LinuxContainerResources) -> Resources:
    return Resources(
        cpu_period=r.cpu_period, cpu_quota=r.cpu_quota, cpu_shares=r.cpu_shares,
        memory_limit=r.memory_limit_in_bytes, memory_swap_limit=r.memory_swap_limit_in_bytes,
        oom_score_adj=r.oom_score_adj, cpuset_cpus=r.cpuset_cpus, cpuset_mems=r.cpuset_mems,
        hugepages=tuple((h.page_size, h.limit) for h in r.hugepage_limits),
        unified=tuple(sorted(r.unified.items())))


def _profile(msg: pb.SecurityProfile, has: bool, legacy: str, default: ProfileKind) -> Profile:
    if has:
        return Profile(_PROFILE[msg.profile_type], msg.localhost_ref)
    if legacy in ("runtime/default", "docker/default"):
        return Profile(ProfileKind.RUNTIME_DEFAULT)
    if legacy.startswith("localhost/"):
        return Profile(ProfileKind.LOCALHOST, legacy.removeprefix("localhost/"))
    return Profile(default) if not legacy else Profile(ProfileKind.UNCONFINED)


def check_run_as_group(sc: pb.LinuxContainerSecurityContext | pb.LinuxSandboxSecurityContext,
                       what: str) -> None:
    """A group without a user is refused, as containerd and CRI-O do: the image's user would
    otherwise run with a primary group nobody asked for together.

    Raises:
        InvalidArgument: run_as_group set without run_as_user or run_as_username.
    """
    has_user = sc.HasField("run_as_user") or bool(getattr(sc, "run_as_username", ""))
    if sc.HasField("run_as_group") and not has_user:
        raise InvalidArgument(f"{what}: run_as_group {sc.run_as_group.value} is set without "
                              "run_as_user or run_as_username")


def _userns(u: pb.UserNamespace) -> UserNs:
    """A container's userns_options, compared with its pod's by the container manager."""
    if u.mode not in _NS:
        raise InvalidArgument(f"namespace_options.userns_options.mode {u.mode}: unknown")
    return UserNs(_NS[u.mode], tuple((m.container_id, m.host_id, m.length) for m in u.uids),
                  tuple((m.container_id, m.host_id, m.length) for m in u.gids))


def _security(sc: pb.LinuxContainerSecurityContext) -> Security:
    check_run_as_group(sc, "container security_context")
    ns = sc.namespace_options
    return Security(
        privileged=sc.privileged,
        caps_add=tuple(sc.capabilities.add_capabilities),
        caps_drop=tuple(sc.capabilities.drop_capabilities),
        caps_ambient=tuple(sc.capabilities.add_ambient_capabilities),
        run_as_user=sc.run_as_user.value if sc.HasField("run_as_user") else None,
        run_as_group=sc.run_as_group.value if sc.HasField("run_as_group") else None,
        run_as_username=sc.run_as_username, readonly_rootfs=sc.readonly_rootfs,
        supplemental_groups=tuple(sc.supplemental_groups),
        strict_supplemental_groups=(
            sc.supplemental_groups_policy == pb.SupplementalGroupsPolicy.Strict),
        no_new_privs=sc.no_new_privs, masked_paths=tuple(sc.masked_paths),
        readonly_paths=tuple(sc.readonly_paths),
        # An absent profile means Unconfined for seccomp, as the kubelet sends it.
        seccomp=_profile(sc.seccomp, sc.HasField("seccomp"), sc.seccomp_profile_path,
                         ProfileKind.UNCONFINED),
        apparmor=_profile(sc.apparmor, sc.HasField("apparmor"), sc.apparmor_profile,
                          ProfileKind.RUNTIME_DEFAULT),
        namespaces=Namespaces(network=_NS[ns.network], pid=_NS[ns.pid], ipc=_NS[ns.ipc],
                              target_id=ns.target_id,
                              userns=_userns(ns.userns_options)
                              if ns.HasField("userns_options") else None),
    )
