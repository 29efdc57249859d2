"""OCI spec generation from a CRI request, by the kubelet's rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from crid.containers import capabilities
from crid.containers.model import (
    ContainerRequest,
    ImageConfig,
    MountRequest,
    Namespaces,
    NsMode,
    Profile,
    ProfileKind,
    Propagation,
    Security,
)
from crid.containers.spec import (
    DEFAULT_MASKED_PATHS,
    HostDevice,
    PodContext,
    SpecInputs,
    generate_spec,
    merge_env,
    process_args,
)
from crid.containers.users import ResolvedUser
from crid.errors import InvalidArgument
from crid.resources import Resources

POD = PodContext(pod_id="p1", name="web", namespace="default", uid="u1", hostname="web-0",
                 netns_path="/run/crid/pods/p1/ns/net", ipcns_path="/run/crid/pods/p1/ns/ipc",
                 utsns_path="/run/crid/pods/p1/ns/uts", resolv_conf="/run/p1/resolv.conf",
                 hosts="/run/p1/hosts", hostname_file="/run/p1/hostname", shm="/run/p1/shm")
IMAGE = ImageConfig(entrypoint=("/bin/ep",), cmd=("--flag",), env=("PATH=/img/bin", "A=1"),
                    working_dir="/srv", user="1000")
ROOT = ResolvedUser(0, 0, (), "root", "/root")


def inputs(req: ContainerRequest | None = None, **kw: object) -> SpecInputs:
    base = SpecInputs(container_id="c1", request=req or ContainerRequest("app", 0, "img"),
                      image=IMAGE, image_name="docker.io/library/img:latest",
                      image_id="sha256:ab", pod=POD, user=ROOT, rootfs="/rootfs",
                      cgroups_path="/kubepods/p1/crid-c1")
    return dataclasses.replace(base, **kw)


def sec(**kw: object) -> Security:
    return Security(**kw)


@pytest.mark.parametrize("command, args, want", [
    ((), (), ["/bin/ep", "--flag"]),
    ((), ("x",), ["/bin/ep", "x"]),
    (("/bin/sh",), (), ["/bin/sh"]),
    (("/bin/sh",), ("-c", "true"), ["/bin/sh", "-c", "true"]),
])
def test_command_and_args_against_entrypoint_and_cmd(command, args, want) -> None:
    req = ContainerRequest("app", 0, "img", command=command, args=args)
    assert process_args(req, IMAGE) == want


def test_no_command_at_all_is_invalid() -> None:
    with pytest.raises(InvalidArgument, match="no command"):
        process_args(ContainerRequest("app", 0, "img"), ImageConfig())


def test_env_merges_over_image_in_place() -> None:
    env = merge_env(("PATH=/img/bin", "A=1", "B=2"), (("A", "9"), ("C", "3")), "h")
    assert env == ["PATH=/img/bin", "HOSTNAME=h", "A=9", "B=2", "C=3"]
    with pytest.raises(InvalidArgument):
        merge_env((), (("BAD=KEY", "v"),), "h")


def test_defaults_of_an_unprivileged_container() -> None:
    spec = generate_spec(inputs())
    proc = spec["process"]
    assert proc["args"] == ["/bin/ep", "--flag"] and proc["cwd"] == "/srv"
    assert "CAP_SYS_ADMIN" not in proc["capabilities"]["bounding"]
    assert "CAP_CHOWN" in proc["capabilities"]["effective"]
    assert spec["linux"]["maskedPaths"] == list(DEFAULT_MASKED_PATHS)
    assert "/proc/sysrq-trigger" in spec["linux"]["readonlyPaths"]
    assert {"type": "network", "path": POD.netns_path} in spec["linux"]["namespaces"]
    assert {"type": "pid"} in spec["linux"]["namespaces"]
    assert "hostname" not in spec  # the pod's UTS namespace already carries it
    assert "seccomp" not in spec["linux"]  # unset profile is Unconfined, as the kubelet means
    dests = [m["destination"] for m in spec["mounts"]]
    assert {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/dev/shm"} <= set(dests)
    sysfs = next(m for m in spec["mounts"] if m["destination"] == "/sys")
    assert "ro" in sysfs["options"]
    assert spec["linux"]["resources"]["devices"][0] == {"allow": False, "access": "rwm"}
    assert spec["annotations"]["io.kubernetes.cri.sandbox-id"] == "p1"


def test_privileged_gets_everything() -> None:
    req = ContainerRequest("app", 0, "img", security=sec(
        privileged=True, seccomp=Profile(ProfileKind.RUNTIME_DEFAULT)))
    spec = generate_spec(inputs(req))
    assert len(spec["process"]["capabilities"]["bounding"]) == 41
    assert "maskedPaths" not in spec["linux"] and "seccomp" not in spec["linux"]
    assert spec["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]


def test_caps_add_drop_with_and_without_prefix() -> None:
    req = ContainerRequest("app", 0, "img", security=sec(
        caps_add=("net_admin", "CAP_SYS_TIME"), caps_drop=("CHOWN",)))
    caps = generate_spec(inputs(req))["process"]["capabilities"]["bounding"]
    assert "CAP_NET_ADMIN" in caps and "CAP_SYS_TIME" in caps and "CAP_CHOWN" not in caps
    req = ContainerRequest("app", 0, "img", security=sec(caps_drop=("ALL",),
                                                          caps_add=("KILL",)))
    assert generate_spec(inputs(req))["process"]["capabilities"]["bounding"] == ["CAP_KILL"]
    with pytest.raises(InvalidArgument, match="CAP_BOGUS"):
        generate_spec(inputs(ContainerRequest("a", 0, "i", security=sec(
            caps_add=("CAP_BOGUS",)))))


NO_SYS_RESOURCE = frozenset(capabilities.ALL_CAPS) - {"CAP_SYS_RESOURCE"}


@pytest.mark.parametrize("security", [
    sec(privileged=True), sec(caps_add=("ALL",)), sec(caps_add=("SYS_RESOURCE", "NET_ADMIN"))])
def test_caps_the_engine_lacks_are_left_out(security: Security) -> None:
    req = ContainerRequest("app", 0, "img", security=security)
    got = generate_spec(inputs(req, grantable_caps=NO_SYS_RESOURCE))["process"]["capabilities"]
    assert "CAP_SYS_RESOURCE" not in got["bounding"] and "CAP_SYS_RESOURCE" not in got["effective"]
    assert "CAP_NET_ADMIN" in got["effective"]
    if security.privileged or "ALL" in security.caps_add:
        assert got["effective"] == [c for c in capabilities.ALL_CAPS if c in NO_SYS_RESOURCE]


def test_engine_caps_read_the_bounding_set(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapEff:\t0000000000000000\nCapBnd:\t000001fffeffffff\n")
    assert capabilities.ungranted(capabilities.engine_caps(status)) == ["CAP_SYS_RESOURCE"]
    assert capabilities.engine_caps(tmp_path / "none") == frozenset(capabilities.ALL_CAPS)


def test_runtime_default_seccomp_blocks_namespaces_unless_sys_admin() -> None:
    req = ContainerRequest("app", 0, "img", security=sec(
        seccomp=Profile(ProfileKind.RUNTIME_DEFAULT)))
    prof = generate_spec(inputs(req))["linux"]["seccomp"]
    allowed = {n for r in prof["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" and "args" not in r
               for n in r["names"]}
    assert prof["defaultAction"] == "SCMP_ACT_ERRNO"
    assert {"read", "write", "execve"} <= allowed
    assert not {"mount", "unshare", "keyctl", "ptrace", "setns"} & allowed


def test_localhost_seccomp_must_be_loaded_by_the_caller() -> None:
    req = ContainerRequest("app", 0, "img", security=sec(
        seccomp=Profile(ProfileKind.LOCALHOST, "/var/lib/kubelet/seccomp/x.json")))
    with pytest.raises(InvalidArgument):
        generate_spec(inputs(req))
    prof = {"defaultAction": "SCMP_ACT_ALLOW"}
    assert generate_spec(inputs(req, localhost_seccomp=prof))["linux"]["seccomp"] == prof


def test_cri_mounts_propagation_readonly_and_order() -> None:
    req = ContainerRequest("app", 0, "img", mounts=(
        MountRequest("/data/sub", "/h/sub", readonly=True, recursive_read_only=True),
        MountRequest("/data", "/h/data", propagation=Propagation.BIDIRECTIONAL,
                     options=("noexec",)),
    ))
    mounts = generate_spec(inputs(req))["mounts"]
    data = [m for m in mounts if m["destination"].startswith("/data")]
    assert [m["destination"] for m in data] == ["/data", "/data/sub"]
    assert data[0]["options"] == ["rbind", "rshared", "noexec"]
    assert data[1]["options"] == ["rbind", "rprivate", "rro", "ro"]


@pytest.mark.parametrize("mount, problem", [
    (MountRequest("rel", "/h"), "must be absolute"),
    (MountRequest("/d", "h"), "must be absolute"),
    (MountRequest("/d", "/h", options=("suid",)), "unsupported mount options"),
    (MountRequest("/d", "/h", recursive_read_only=True), "recursive read-only"),
])
def test_bad_mounts(mount: MountRequest, problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        generate_spec(inputs(ContainerRequest("app", 0, "img", mounts=(mount,))))


def test_user_mount_replaces_pod_file() -> None:
    req = ContainerRequest("app", 0, "img", mounts=(MountRequest("/etc/hosts", "/h/hosts"),))
    hosts = [m for m in generate_spec(inputs(req))["mounts"] if m["destination"] == "/etc/hosts"]
    assert [m["source"] for m in hosts] == ["/h/hosts"]


def test_resources_and_devices() -> None:
    req = ContainerRequest("app", 0, "img", resources=Resources(
        cpu_shares=512, cpu_quota=50000, cpu_period=100000, memory_limit=1 << 27,
        memory_swap_limit=1 << 28, oom_score_adj=500, cpuset_cpus="0",
        hugepages=(("2MB", 0),), unified=(("memory.high", "max"),)))
    dev = HostDevice("/dev/fuse", "c", 10, 229, 0o666, 0, 0, "rw")
    spec = generate_spec(inputs(req, devices=(dev,)))
    res = spec["linux"]["resources"]
    assert res["cpu"] == {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0"}
    assert res["memory"] == {"limit": 1 << 27, "swap": 1 << 28}
    assert res["hugepageLimits"] == [{"pageSize": "2MB", "limit": 0}]
    assert res["unified"] == {"memory.high": "max"}
    assert spec["process"]["oomScoreAdj"] == 500
    assert spec["linux"]["devices"][0]["path"] == "/dev/fuse"
    assert {"allow": True, "type": "c", "major": 10, "minor": 229,
            "access": "rw"} in res["devices"]


def test_namespace_modes() -> None:
    host = sec(namespaces=Namespaces(network=NsMode.NODE, pid=NsMode.NODE, ipc=NsMode.NODE))
    spec = generate_spec(inputs(ContainerRequest("a", 0, "i", security=host)))
    assert [n["type"] for n in spec["linux"]["namespaces"]] == ["mount"]
    target = sec(namespaces=Namespaces(pid=NsMode.TARGET, target_id="c0"))
    spec = generate_spec(inputs(ContainerRequest("a", 0, "i", security=target), target_pid=42))
    assert {"type": "pid", "path": "/proc/42/ns/pid"} in spec["linux"]["namespaces"]
    with pytest.raises(InvalidArgument):
        generate_spec(inputs(ContainerRequest("a", 0, "i", security=target)))


def test_readonly_rootfs_and_no_new_privs() -> None:
    req = ContainerRequest("app", 0, "img", security=sec(readonly_rootfs=True,
                                                          no_new_privs=True))
    spec = generate_spec(inputs(req))
    assert spec["root"] == {"path": "/rootfs", "readonly": True}
    assert spec["process"]["noNewPrivileges"] is True


def test_a_user_namespaced_pod_joins_its_user_namespace_with_idmapped_binds() -> None:
    pod = dataclasses.replace(POD, userns_path="/run/crid/pods/p1/ns/user",
                              userns_root=(165536, 165536))
    req = ContainerRequest("app", 0, "img", mounts=(MountRequest("/data", "/h/data"),))
    spec = generate_spec(inputs(req, pod=pod))
    ns = spec["linux"]["namespaces"]
    assert ns[:2] == [{"type": "mount"}, {"type": "user", "path": pod.userns_path}]
    assert "uidMappings" not in spec["linux"]  # joined by path: the namespace has them
    binds = {m["destination"]: m["options"] for m in spec["mounts"] if m["type"] == "bind"}
    assert set(binds) == {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/dev/shm",
                          "/data"}
    # rbinds, so idmapped recursively: a volume's submounts keep their owners too
    assert all(opts[0] == "rbind" and opts[-1] == "ridmap" for opts in binds.values())
    others = [m for m in spec["mounts"] if m["type"] != "bind"]
    assert all(not {"idmap", "ridmap"} & set(m["options"]) for m in others)


def test_pods_without_a_user_namespace_stay_as_they_were() -> None:
    spec = generate_spec(inputs())
    assert all(n["type"] != "user" for n in spec["linux"]["namespaces"])
    assert all(not {"idmap", "ridmap"} & set(m["options"]) for m in spec["mounts"])


@pytest.mark.parametrize("modes, want", [
    ((), None), ((Propagation.PRIVATE,), None),
    ((Propagation.PRIVATE, Propagation.HOST_TO_CONTAINER), "rslave"),
    ((Propagation.HOST_TO_CONTAINER, Propagation.BIDIRECTIONAL), "rshared"),
])
def test_rootfs_propagation_follows_the_volumes_as_containerd_sets_it(modes, want) -> None:
    mounts = tuple(MountRequest(f"/v{i}", "/host", propagation=p) for i, p in enumerate(modes))
    spec = generate_spec(inputs(ContainerRequest("app", 0, "img", mounts=mounts)))
    assert spec["linux"].get("rootfsPropagation") == want
