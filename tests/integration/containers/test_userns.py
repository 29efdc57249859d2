"""Pods with a user namespace of their own (hostUsers: false, KEP-127), as the kubelet asks
for them: NamespaceMode POD with one uid and one gid mapping of its range. The pod's
namespaces are owned by that user namespace; container rootfs and volumes are reached through
idmapped mounts, so a host file owned by 0 is root's inside and nothing is chowned."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from crid.api import api_pb2 as pb
from tests.integration.containers.helpers import (
    ContainerRig,
    code_of,
    container_config,
    mounts_under,
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
    import json
    return int(json.loads(rig.status(cid, verbose=True).info["info"])["pid"])


def _ns_pins(rig: ContainerRig, pod_id: str) -> list[str]:
    return [ln.split()[4] for ln in Path("/proc/self/mountinfo").read_text().splitlines()
            if pod_id in ln.split()[4]]


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
    holders = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.readlink(f"/proc/{p}/ns/user") == userns:
                    holders.append(p)
            except OSError:
                pass
    assert holders == []


def test_shared_pid_namespace_in_a_user_namespace(rig: ContainerRig) -> None:
    host = _host_range()
    pod = rig.run_pod(namespaces=_namespaces(_userns(host), pid=pb.POD))
    cid = rig.run(pod, container_config(command=("/bin/sleep", "3600")))
    ps = rig.exec(cid, "/bin/ps", "-o", "pid,user,args").stdout.decode().splitlines()[1:]
    assert [ln.split()[:2] for ln in ps if "sleep" in ln][:2] == [["1", "root"], ["7", "root"]] \
        or any("sleep 3600" in ln for ln in ps), ps
    pid = _pid(rig, cid)
    assert _map(Path(f"/proc/{pid}/uid_map").read_text()) == [[0, host, RANGE]]
    st = rig.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod[0])).status
    got = st.linux.namespaces.options.userns_options
    assert (got.mode, [(m.host_id, m.container_id, m.length) for m in got.uids]) == \
        (pb.POD, [(host, 0, RANGE)])


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
