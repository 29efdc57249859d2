"""Pods with a user namespace of their own (hostUsers: false, KEP-127), as the kubelet asks
for them: NamespaceMode POD with one uid and one gid mapping of its range. The pod's
namespaces are owned by that user namespace; container rootfs and volumes are reached through
idmapped mounts, so a host file owned by 0 is root's inside and nothing is chowned."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from crid.api import api_pb2 as pb
from runtime.linux import libc
from tests.integration.containers.helpers import (
    ContainerRig,
    code_of,
    container_config,
    mounts_under,
    read_log,
    wait_for,
)

RANGE = 65536


def _userns(host_id: int, mode: int = pb.POD, uids: list | None = None,
            gids: list | None = None) -> pb.UserNamespace:
    one = [pb.IDMapping(host_id=host_id, container_id=0, length=RANGE)]
    return pb.UserNamespace(mode=mode, uids=one if uids is None else uids,
                            gids=one if gids is None else gids)


def _host_range() -> int:
    """A range of its own, as the kubelet hands out multiples of 65536 (never the first)."""
    return RANGE * (200 + secrets.randbelow(30000))


def _namespaces(userns: pb.UserNamespace, pid: int = pb.CONTAINER,
                network: int = pb.POD) -> pb.NamespaceOption:
    return pb.NamespaceOption(network=network, pid=pid, ipc=pb.POD, userns_options=userns)


def _map(text: str) -> list[list[int]]:
    return [[int(x) for x in line.split()] for line in text.splitlines() if line.strip()]


def _pid(rig: ContainerRig, cid: str) -> int:
    return int(json.loads(rig.status(cid, verbose=True).info["info"])["pid"])


def _ns_pins(rig: ContainerRig, pod_id: str) -> list[str]:
    return [ln.split()[4] for ln in Path("/proc/self/mountinfo").read_text().splitlines()
            if pod_id in ln.split()[4]]


def _holders(userns: str) -> list[str]:
    """Pids still in that user namespace."""
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.readlink(f"/proc/{p}/ns/user") == userns:
                    out.append(p)
            except OSError:
                pass
    return out


def test_hostusers_false_pod(rig: ContainerRig) -> None:
    host = _host_range()
    vol = rig.base / "crt-vol"
    vol.mkdir()
    (vol / "by-root").write_text("root's\n")
    (vol / "by-1000").write_text("1000's\n")
    os.chown(vol / "by-1000", 1000, 1000)
    (vol / "by-outside").write_text("unmapped\n")
    os.chown(vol / "by-outside", RANGE + 7, RANGE + 7)
    pod = rig.run_pod(namespaces=_namespaces(_userns(host)))
    cid = rig.run(pod, container_config(command=("/bin/sleep", "3600"), mounts=[
        pb.Mount(container_path="/vol", host_path=str(vol))]))
    pid = _pid(rig, cid)

    # uid 0 inside is the kubelet's range outside, seen from both sides.
    want = [[0, host, RANGE]]
    assert _map(Path(f"/proc/{pid}/uid_map").read_text()) == want
    assert _map(Path(f"/proc/{pid}/gid_map").read_text()) == want
    assert _map(rig.exec(cid, "/bin/cat", "/proc/self/uid_map").stdout.decode()) == want
    assert _map(rig.exec(cid, "/bin/cat", "/proc/self/gid_map").stdout.decode()) == want
    status = Path(f"/proc/{pid}/status").read_text()
    uid_line = next(ln for ln in status.splitlines() if ln.startswith("Uid:"))
    assert uid_line.split()[1:] == [str(host)] * 4
    assert rig.exec(cid, "/bin/id").stdout.decode().startswith("uid=0(root) gid=0(root)")
    # The pod's network, IPC and UTS namespaces are owned by its user namespace: pinned ones
    # the container joined, the same for every container of the pod.
    userns = os.readlink(f"/proc/{pid}/ns/user")
    assert userns != os.readlink("/proc/self/ns/user")
    second = rig.run(pod, container_config(command=("/bin/sleep", "3601")))
    for kind in ("user", "net", "ipc", "uts"):
        assert os.readlink(f"/proc/{_pid(rig, second)}/ns/{kind}") == \
            os.readlink(f"/proc/{pid}/ns/{kind}")

    # Volume files keep their owners as the container sees them (idmapped, not chowned).
    out = rig.exec(cid, "/bin/stat", "-c", "%n %u %g", "/vol/by-root", "/vol/by-1000",
                   "/vol/by-outside")
    assert out.stdout.decode().splitlines() == [
        "/vol/by-root 0 0", "/vol/by-1000 1000 1000", "/vol/by-outside 65534 65534"]
    assert rig.exec(cid, "/bin/cat", "/vol/by-root").stdout == b"root's\n"
    assert rig.exec(cid, "/bin/sh", "-c", "echo new > /vol/by-container").exit_code == 0
    assert (os.stat(vol / "by-container").st_uid, os.stat(vol / "by-container").st_gid) == (0, 0)
    assert os.stat(vol / "by-root").st_uid == 0  # nothing chowned

    # The rootfs: root's own, writable, copy-up included. The shared layers are not touched
    # (idmapped); what the container writes is stored with its host ids.
    assert rig.exec(cid, "/bin/stat", "-c", "%u %g", "/", "/bin/busybox").stdout.decode() \
        .split() == ["0", "0", "0", "0"]
    wrote = rig.exec(cid, "/bin/sh", "-c", "echo hi > /new && echo x >> /etc/passwd && "
                     "mkdir -p /tmp/d && cat /new")
    assert (wrote.exit_code, wrote.stdout, wrote.stderr) == (0, b"hi\n", b"")
    upper = rig.daemon.root / "containers" / cid / "upper"
    assert [(os.stat(p).st_uid, os.stat(p).st_gid) for p in (upper, upper / "new",
                                                               upper / "etc" / "passwd")] \
        == [(host, host)] * 3
    layer_files = [p for p in (rig.daemon.root / "images").rglob("passwd")
                   if "etc" in p.parts and p.is_file()]
    assert layer_files and {(p.stat().st_uid, p.stat().st_gid) for p in layer_files} == {(0, 0)}
    # proc, sysfs and mqueue are the namespaces' own (mountable only by their owner's root).
    mounts = rig.exec(cid, "/bin/cat", "/proc/self/mounts").stdout.decode()
    assert {ln.split()[1]: ln.split()[2] for ln in mounts.splitlines()}.keys() >= \
        {"/proc", "/sys", "/dev/mqueue", "/vol", "/dev/shm", "/etc/hosts"}
    assert rig.exec(cid, "/bin/stat", "-c", "%u", "/etc/hosts").stdout.strip() == b"0"

    # Everything is gone with the pod: containers, pins, idmapped mounts, the namespace.
    rig.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod[0]))
    rig.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod[0]))
    rig.pods.remove(pod[0])
    assert _ns_pins(rig, pod[0]) == []
    assert mounts_under(rig.daemon.root / "containers") == []
    assert not any(str(vol) in ln for ln in Path("/proc/self/mountinfo").read_text()
                   .splitlines())
    assert _holders(userns) == []


def test_kubelet_volumes_in_a_user_namespace(rig: ContainerRig) -> None:
    """What a kubelet pod mounts: a read-only volume, a tmpfs one (secrets, the service
    account token), a directory for a non-root container user; all idmapped, none chowned."""
    host = _host_range()
    ro, data, secret = rig.base / "crt-ro", rig.base / "crt-data", rig.base / "crt-secret"
    for d in (ro, data, secret):
        d.mkdir()
    (ro / "conf").write_text("v\n")
    os.chown(data, 1000, 1000)
    libc.mount("tmpfs", str(secret), "tmpfs", 0, "size=1m,mode=0755")
    try:
        (secret / "token").write_text("t0k3n")
        os.chmod(secret / "token", 0o640)
        pod = rig.run_pod(namespaces=_namespaces(_userns(host)))
        cfg = container_config(command=("/bin/sleep", "3600"), mounts=[
            pb.Mount(container_path="/ro", host_path=str(ro), readonly=True),
            pb.Mount(container_path="/data", host_path=str(data)),
            pb.Mount(container_path="/secret", host_path=str(secret), readonly=True)])
        cfg.linux.security_context.run_as_user.value = 1000
        cfg.linux.security_context.run_as_group.value = 1000
        cid = rig.run(pod, cfg)
        pid = _pid(rig, cid)
        uid_line = next(ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
                        if ln.startswith("Uid:"))
        assert uid_line.split()[1:] == [str(host + 1000)] * 4  # 1000 inside
        out = rig.exec(cid, "/bin/sh", "-c", "id -u; cat /ro/conf; stat -c '%u %g %a' "
                       "/secret/token /data; echo w > /data/mine && echo wrote; "
                       "echo x > /ro/conf || echo refused")
        assert out.stdout.decode().splitlines() == [
            "1000", "v", "0 0 640", "1000 1000 755", "wrote", "refused"], out.stderr
        assert (os.stat(data / "mine").st_uid, os.stat(data / "mine").st_gid) == (1000, 1000)
        assert (ro / "conf").read_text() == "v\n"
        # 1000 inside may not read root's 0640 token: the idmap keeps the owner, not a chown
        assert rig.exec(cid, "/bin/cat", "/secret/token").exit_code != 0
        assert os.stat(secret / "token").st_uid == 0
        rig.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod[0]))
        rig.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod[0]))
        rig.pods.remove(pod[0])
        mounts = Path("/proc/self/mountinfo").read_text()
        assert str(ro) not in mounts and str(data) not in mounts
        assert mounts.count(f" {secret} ") == 1  # our own tmpfs only
    finally:
        libc.umount2(str(secret), libc.MNT_DETACH)


def test_a_volumes_submounts_are_idmapped_too(rig: ContainerRig) -> None:
    """A volume with mounts inside it (a tmpfs, a bind of another directory), as a kubelet
    volume holding projected or nested volumes: owners read the same through every level,
    not 65534 below the top (the binds are idmapped recursively)."""
    host = _host_range()
    vol, other = rig.base / "crt-vol", rig.base / "crt-other"
    for d in (vol, other, vol / "tmp", vol / "bound"):
        d.mkdir()
    (other / "f").write_text("b\n")
    os.chown(other / "f", 1000, 1000)
    (vol / "top").write_text("t\n")
    os.chown(vol / "top", 1000, 1000)
    libc.mount("tmpfs", str(vol / "tmp"), "tmpfs", 0, "size=1m,mode=0755")
    try:
        libc.mount(str(other), str(vol / "bound"), None, libc.MS_BIND)
        (vol / "tmp" / "f").write_text("m\n")
        os.chown(vol / "tmp" / "f", 1000, 1000)
        os.chown(vol / "tmp", 1000, 1000)
        pod = rig.run_pod(namespaces=_namespaces(_userns(host)))
        cid = rig.run(pod, container_config(command=("/bin/sleep", "3600"), mounts=[
            pb.Mount(container_path="/vol", host_path=str(vol)),
            pb.Mount(container_path="/rro", host_path=str(vol), readonly=True,
                     recursive_read_only=True)]))
        out = rig.exec(cid, "/bin/stat", "-c", "%n %u %g", "/vol/top", "/vol/tmp",
                       "/vol/tmp/f", "/vol/bound/f", "/rro/tmp/f")
        assert out.stdout.decode().splitlines() == [
            "/vol/top 1000 1000", "/vol/tmp 1000 1000", "/vol/tmp/f 1000 1000",
            "/vol/bound/f 1000 1000", "/rro/tmp/f 1000 1000"], out.stderr
        # idmapped and recursively read-only together: the submount refuses writes too
        refused = rig.exec(cid, "/bin/touch", "/rro/tmp/refused")
        assert refused.exit_code != 0 and b"Read-only file system" in refused.stderr
        # written through the submount's idmap: stored with the host's ids, not the range's
        assert rig.exec(cid, "/bin/sh", "-c", "echo w > /vol/tmp/new").exit_code == 0
        assert os.stat(vol / "tmp" / "new").st_uid == 0
        rig.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod[0]))
        rig.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod[0]))
        rig.pods.remove(pod[0])
        assert mounts_under(rig.daemon.root / "containers") == []
    finally:
        for d in (vol / "bound", vol / "tmp"):
            with contextlib.suppress(OSError):
                libc.umount2(str(d), libc.MNT_DETACH)


def test_a_submount_that_cannot_be_idmapped_is_refused_by_name(rig: ContainerRig) -> None:
    """A volume holding a filesystem the kernel will not idmap (proc here; overlayfs too):
    the create fails naming that submount and its type, rather than showing its files as
    65534, and leaves nothing."""
    vol = rig.base / "crt-vol"
    (vol / "p").mkdir(parents=True)
    libc.mount("proc", str(vol / "p"), "proc", 0)
    try:
        pod = rig.run_pod(namespaces=_namespaces(_userns(_host_range())))
        with pytest.raises(grpc.RpcError) as err:
            rig.create(pod, container_config(command=("/bin/sleep", "3600"), mounts=[
                pb.Mount(container_path="/vol", host_path=str(vol))]))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert f"its submount {vol / 'p'} (proc) cannot be idmapped" in err.value.details()
        assert rig.rt.ListContainers(pb.ListContainersRequest()).containers == []
        assert mounts_under(rig.daemon.root / "containers") == []
    finally:
        libc.umount2(str(vol / "p"), libc.MNT_DETACH)


def test_pod_sysctls_in_a_user_namespace(rig: ContainerRig) -> None:
    """Network, IPC and mqueue sysctls of namespaces the pod's user namespace owns (IPC and
    mqueue ones are writable only by that namespace's root); the daemon's threads keep
    their own ids."""
    pod = rig.run_pod(namespaces=_namespaces(_userns(_host_range())), sysctls={
        "net.ipv4.ip_unprivileged_port_start": "0", "kernel.shm_rmid_forced": "1",
        "kernel.msgmax": "16384", "fs.mqueue.msg_max": "20"})
    cid = rig.run(pod, container_config(command=("/bin/sleep", "3600")))
    out = rig.exec(cid, "/bin/cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start",
                   "/proc/sys/kernel/shm_rmid_forced", "/proc/sys/kernel/msgmax",
                   "/proc/sys/fs/mqueue/msg_max")
    assert out.stdout.split() == [b"0", b"1", b"16384", b"20"], out.stderr
    tasks = Path(f"/proc/{rig.daemon.proc.pid}/task")
    for t in tasks.iterdir():
        with contextlib.suppress(FileNotFoundError):
            uid = next(ln for ln in (t / "status").read_text().splitlines()
                       if ln.startswith("Uid:"))
            assert uid.split()[1:] == ["0"] * 4, t
    bad = code_of(lambda: rig.run_pod(namespaces=_namespaces(_userns(_host_range())),
                                      sysctls={"kernel.msgmax": "-5"}))
    assert bad == grpc.StatusCode.INVALID_ARGUMENT


def test_id_valued_sysctls_are_in_the_pods_id_space(rig: ContainerRig) -> None:
    """net.ipv4.ping_group_range names gids, which the kernel reads in the writer's user
    namespace: the pod's range reads back inside as asked (not 65534), is the range's host
    gids outside, and the kubelet's usual "every group" stops at the range's last gid (as
    CRI-O does: the kernel refuses a gid the namespace does not map)."""
    host = _host_range()
    key = "net.ipv4.ping_group_range"
    for asked, inside in (("0 2147483647", [0, RANGE - 1]), ("100 200", [100, 200])):
        pod = rig.run_pod(namespaces=_namespaces(_userns(host)), sysctls={key: asked})
        cid = rig.run(pod, container_config(command=("/bin/sleep", "3600")))
        out = rig.exec(cid, "/bin/cat", "/proc/sys/net/ipv4/ping_group_range")
        assert [int(x) for x in out.stdout.split()] == inside, out.stderr
        fd = os.open(f"/proc/{_pid(rig, cid)}/ns/net", os.O_RDONLY)
        try:
            outside = subprocess.run(
                ["nsenter", f"--net=/proc/self/fd/{fd}", "cat",
                 "/proc/sys/net/ipv4/ping_group_range"], pass_fds=(fd,), capture_output=True,
                check=True).stdout
        finally:
            os.close(fd)
        assert [int(x) for x in outside.split()] == [host + i for i in inside]
    refused = code_of(lambda: rig.run_pod(namespaces=_namespaces(_userns(_host_range())),
                                          sysctls={key: f"{RANGE + 5} {RANGE + 9}"}))
    assert refused == grpc.StatusCode.INVALID_ARGUMENT
    assert len(rig.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items) == 2


def test_shared_pid_namespace_in_a_user_namespace(rig: ContainerRig) -> None:
    host = _host_range()
    pod = rig.run_pod(namespaces=_namespaces(_userns(host), pid=pb.POD))
    cid = rig.run(pod, container_config(command=("/bin/sleep", "3600")))
    # The infra process is pid 1 of the pod's PID namespace, which is in its user namespace:
    # root inside, the range's first uid outside.
    ps = rig.exec(cid, "/bin/ps", "-o", "pid,user,args").stdout.decode().splitlines()[1:]
    assert ["1", "root"] == ps[0].split()[:2], ps
    assert any(ln.split()[1:3] == ["root", "/bin/sleep"] for ln in ps), ps
    pid = _pid(rig, cid)
    assert _map(Path(f"/proc/{pid}/uid_map").read_text()) == [[0, host, RANGE]]
    st = rig.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod[0])).status
    got = st.linux.namespaces.options.userns_options
    assert (got.mode, [(m.host_id, m.container_id, m.length) for m in got.uids]) == \
        (pb.POD, [(host, 0, RANGE)])


def test_critest_mapping_as_the_kubelet_sends_it(rig: ContainerRig) -> None:
    """cri-tools' "runtime should support NamespaceMode_POD": ids 0..99999 on host 1000 on
    (not a multiple of 65536), the container's namespace_options the pod's, its log the
    container's /proc/self/uid_map."""
    mapping = [pb.IDMapping(container_id=0, host_id=1000, length=100000)]
    ns = pb.NamespaceOption(userns_options=pb.UserNamespace(mode=pb.POD, uids=mapping,
                                                            gids=mapping))
    pod = rig.run_pod(namespaces=ns)
    cfg = container_config(command=("cat", "/proc/self/uid_map"))
    cfg.linux.security_context.namespace_options.CopyFrom(ns)
    cid = rig.run(pod, cfg)
    wait_for("the container to exit", lambda: rig.status(cid).status.state ==
             pb.CONTAINER_EXITED)
    assert rig.status(cid).status.exit_code == 0
    log = read_log(rig.log_dir / pod[1].metadata.name / cfg.log_path)
    assert re.search(r"\s+0\s+1000\s+100000\n", "".join(t + "\n" for _, _, t in log)), log


def test_a_container_joins_its_pods_user_namespace_or_none(rig: ContainerRig) -> None:
    """A container's userns_options, when given, are its pod's (as containerd checks):
    otherwise INVALID_ARGUMENT, and nothing is left of the refused container."""
    host = _host_range()
    pod = rig.run_pod(namespaces=_namespaces(_userns(host)))
    plain = rig.run_pod()
    other = _userns(host + RANGE)
    for what, target, userns in [
        ("other mapping", pod, other),
        ("host's in a userns pod", pod, pb.UserNamespace(mode=pb.NODE)),
        ("a userns in a plain pod", plain, _userns(host)),
    ]:
        cfg = container_config(command=("/bin/sleep", "3600"))
        cfg.linux.security_context.namespace_options.userns_options.CopyFrom(userns)
        assert code_of(lambda t=target, c=cfg: rig.create(t, c)) == \
            grpc.StatusCode.INVALID_ARGUMENT, what
    assert rig.rt.ListContainers(pb.ListContainersRequest()).containers == []
    assert mounts_under(rig.daemon.root / "containers") == []
    for target, userns in [(pod, _userns(host)), (plain, pb.UserNamespace(mode=pb.NODE)),
                           (pod, None), (plain, None)]:
        cfg = container_config(command=("/bin/sleep", "3600"))
        if userns is not None:
            cfg.linux.security_context.namespace_options.userns_options.CopyFrom(userns)
        cid = rig.run(target, cfg)
        want = [[0, host, RANGE]] if target is pod else _map(
            Path("/proc/self/uid_map").read_text())
        assert _map(rig.exec(cid, "cat", "/proc/self/uid_map").stdout.decode()) == want


@pytest.mark.parametrize("userns", [None, pb.UserNamespace(mode=pb.NODE)],
                         ids=["absent", "NODE"])
def test_pods_without_a_user_namespace_are_unchanged(rig: ContainerRig,
                                                     userns: pb.UserNamespace | None) -> None:
    ns = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER, ipc=pb.POD)
    if userns is not None:
        ns.userns_options.CopyFrom(userns)
    vol = rig.base / "crt-vol"
    vol.mkdir()
    pod = rig.run_pod(namespaces=ns)
    cid = rig.run(pod, container_config(command=("/bin/sleep", "3600"), mounts=[
        pb.Mount(container_path="/vol", host_path=str(vol))]))
    pid = _pid(rig, cid)
    assert os.readlink(f"/proc/{pid}/ns/user") == os.readlink("/proc/self/ns/user")
    cdir = rig.daemon.root / "containers" / cid
    assert cdir.stat().st_mode & 0o777 == 0o700
    spec = json.loads((cdir / "config.json").read_text())
    assert all(n["type"] != "user" for n in spec["linux"]["namespaces"])
    assert all(not {"idmap", "ridmap"} & set(m["options"]) for m in spec["mounts"])
    assert [p for p in _ns_pins(rig, pod[0]) if p.endswith("/user")] == []
    assert rig.exec(cid, "/bin/sh", "-c", "echo x > /vol/f").exit_code == 0
    assert os.stat(vol / "f").st_uid == 0
    st = rig.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod[0])).status
    assert st.linux.namespaces.options.userns_options.mode == pb.NODE


def test_a_user_namespaced_pod_survives_a_daemon_restart(rig: ContainerRig) -> None:
    host = _host_range()
    pod = rig.run_pod(namespaces=_namespaces(_userns(host)))
    cid = rig.run(pod, container_config(command=("/bin/sleep", "3600")))
    pid = _pid(rig, cid)
    userns = os.readlink(f"/proc/{pid}/ns/user")
    rig.restart()
    assert _pid(rig, cid) == pid
    assert rig.exec(cid, "cat", "/proc/self/uid_map").stdout.split() == \
        [b"0", str(host).encode(), str(RANGE).encode()]
    second = rig.run(pod, container_config(command=("/bin/sleep", "3601")))
    assert os.readlink(f"/proc/{_pid(rig, second)}/ns/user") == userns
    rig.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod[0]))
    rig.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod[0]))
    rig.pods.remove(pod[0])
    assert _ns_pins(rig, pod[0]) == []
    assert mounts_under(rig.daemon.root / "containers") == []
    assert _holders(userns) == []


def test_bad_user_namespace_requests_are_refused(rig: ContainerRig) -> None:
    host = _host_range()
    two = [pb.IDMapping(host_id=host, container_id=0, length=1000),
           pb.IDMapping(host_id=host + 1000, container_id=1000, length=1000)]
    bad = {
        "CONTAINER": _namespaces(_userns(host, mode=pb.CONTAINER)),
        "TARGET": _namespaces(_userns(host, mode=pb.TARGET)),
        "two uid mappings": _namespaces(_userns(host, uids=two)),
        "two gid mappings": _namespaces(_userns(host, gids=two)),
        "no mapping": _namespaces(_userns(host, uids=[])),
        "root unmapped": _namespaces(_userns(host, uids=[
            pb.IDMapping(host_id=host, container_id=1, length=RANGE)])),
        "empty range": _namespaces(_userns(host, gids=[
            pb.IDMapping(host_id=host, container_id=0, length=0)])),
        "host network": _namespaces(_userns(host), network=pb.NODE),
        "host pid": _namespaces(_userns(host), pid=pb.NODE),
    }
    for what, ns in bad.items():
        code = code_of(lambda ns=ns: rig.run_pod(namespaces=ns))
        assert code == grpc.StatusCode.INVALID_ARGUMENT, what
    assert rig.rt.ListPodSandbox(pb.ListPodSandboxRequest()).items == []
    st = rig.rt.Status(pb.StatusRequest())
    assert all(h.features.user_namespaces for h in st.runtime_handlers)


def test_a_root_others_cannot_search_is_refused_clearly(rig: ContainerRig) -> None:
    """The container's root (a host uid of the range) must walk to its rootfs: under a 0700
    directory the create fails with FAILED_PRECONDITION naming it, leaving nothing."""
    pod = rig.run_pod(namespaces=_namespaces(_userns(_host_range())))
    mode = rig.base.stat().st_mode & 0o7777
    rig.base.chmod(0o700)
    try:
        with pytest.raises(grpc.RpcError) as err:
            rig.create(pod, container_config(command=("/bin/sleep", "3600")))
    finally:
        rig.base.chmod(mode)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"{rig.base} is mode 0700" in err.value.details()
    assert rig.rt.ListContainers(pb.ListContainersRequest()).containers == []
    assert list((rig.daemon.root / "containers").iterdir()) == []
    rig.run(pod, container_config(command=("/bin/sleep", "3600")))


@pytest.fixture(autouse=True)
def _traversable(rig: ContainerRig) -> Iterator[None]:
    """The daemon's root lies under pytest's private /tmp/pytest-of-root (0700); a container
    root that is a host uid of its range must be able to walk to its rootfs, as it can under
    /var/lib/crid (0711). Search permission only, restored afterwards."""
    changed = []
    for d in [rig.base, *rig.base.parents]:
        mode = d.stat().st_mode & 0o7777
        if mode & 0o001 == 0:
            d.chmod(mode | 0o011)
            changed.append((d, mode))
    yield
    for d, mode in changed:
        d.chmod(mode)
