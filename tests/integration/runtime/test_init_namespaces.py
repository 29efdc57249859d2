"""Joining pinned namespaces by path (how containers join their pod) and user namespaces."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time

import pytest

from runtime.init import ExecContext, exec_in
from runtime.linux import libc
from runtime.spec import parse_process
from tests.integration.runtime.bundle import default_config, make_rootfs, run


@pytest.fixture
def pinned(tmp_path):  # type: ignore[no-untyped-def]
    """net, ipc and uts namespaces pinned by bind mounts, uts carrying its own hostname."""
    paths = {}
    for kind in ("net", "ipc", "uts"):
        p = tmp_path / f"crt-init-{kind}"
        p.touch()
        paths[kind] = str(p)
    subprocess.run(["unshare", f"--net={paths['net']}", f"--ipc={paths['ipc']}",
                    f"--uts={paths['uts']}", "hostname", "crt-init-pod"], check=True)
    yield paths
    for p in paths.values():
        subprocess.run(["umount", p], check=False)


def test_joins_net_ipc_uts_by_path(bundle, pinned):
    cfg = default_config(["sh", "-c", "hostname; for n in net ipc uts; do "
                          "readlink /proc/self/ns/$n; done"])
    del cfg["hostname"]
    cfg["linux"]["namespaces"] = [{"type": "pid"}, {"type": "mount"},
                                  {"type": "network", "path": pinned["net"]},
                                  {"type": "ipc", "path": pinned["ipc"]},
                                  {"type": "uts", "path": pinned["uts"]}]
    res = run(bundle, cfg)
    assert res.error == ""
    want = ["crt-init-pod"] + [f"{k}:[{os.stat(pinned[k]).st_ino}]" for k in ("net", "ipc", "uts")]
    assert res.output.split() == want


def test_two_containers_share_a_pinned_netns(bundle, pinned):
    cfg = default_config(["sh", "-c", "readlink /proc/self/ns/net"])
    cfg["linux"]["namespaces"] = [{"type": "pid"}, {"type": "mount"}, {"type": "uts"},
                                  {"type": "network", "path": pinned["net"]}]
    first = run(bundle, cfg).output
    second = run(bundle, cfg).output
    assert first == second == f"net:[{os.stat(pinned['net']).st_ino}]\n"


def test_missing_namespace_path_is_a_clear_error(bundle):
    cfg = default_config(["true"])
    cfg["linux"]["namespaces"][1] = {"type": "network", "path": "/nonexistent/crt-init-ns"}
    res = run(bundle, cfg)
    assert res.error == ("InitError: creating container crt-init-test: opening namespace paths: "
                         "[Errno 2] opening network namespace /nonexistent/crt-init-ns: "
                         "No such file or directory")
    assert res.children_left is False


def test_hostname_without_uts_namespace_is_refused(bundle):
    cfg = default_config(["true"])
    cfg["linux"]["namespaces"] = [{"type": "pid"}, {"type": "mount"}]
    res = run(bundle, cfg)
    assert res.error == ("SpecError: hostname: setting the hostname needs a private UTS "
                         "namespace")


def _chown_tree(path: str, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        for name in [*dirnames, *filenames]:
            os.lchown(os.path.join(dirpath, name), uid, gid)
    os.lchown(path, uid, gid)


@pytest.fixture
def open_bundle():  # type: ignore[no-untyped-def]
    """A bundle under /tmp itself: the mapped root must be able to walk to the rootfs, and
    pytest's own directory is 0700."""
    path = tempfile.mkdtemp(prefix="crt-init-userns-", dir="/tmp")
    os.chmod(path, 0o755)
    make_rootfs(os.path.join(path, "rootfs"))
    yield path
    shutil.rmtree(path)


def test_user_namespace_with_mappings(open_bundle):
    base = 200000
    bundle = open_bundle
    _chown_tree(os.path.join(bundle, "rootfs"), base, base)
    cfg = default_config(["sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; "
                          "stat -c '%u %t:%T' /dev/null; touch /tmp/x && stat -c %u /tmp/x"])
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": base, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": base, "size": 65536}]
    res = run(bundle, cfg)
    assert res.error == ""
    assert res.output.split() == ["0", str(base), "65536", "0", str(base), "65536",
                                  "0", "65534", "1:3", "0"]
    assert os.stat(os.path.join(bundle, "rootfs/tmp/x")).st_uid == base


def test_exec_in_a_user_namespaced_container(open_bundle):
    base = 300000
    bundle = open_bundle
    _chown_tree(os.path.join(bundle, "rootfs"), base, base)
    cfg = default_config(["sleep", "30"])
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": base, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": base, "size": 65536}]

    def do_exec(pid: int, out: int) -> int:
        proc = parse_process({**cfg["process"], "args": ["sh", "-c", "cat /proc/self/uid_map; id"],
                              "user": {"uid": 1000, "gid": 1000, "additionalGids": [4]}})
        epid = exec_in(ExecContext(pid=pid, process=proc, stdout=out, stderr=out))
        _, st = os.waitpid(epid, 0)
        os.kill(pid, 9)
        return os.waitstatus_to_exitcode(st)

    res = run(bundle, cfg, after_spawn=do_exec)
    assert res.error == ""
    assert res.extra == 0
    assert res.output.splitlines() == [f"         0     {base}      65536",
                                       "uid=1000 gid=1000 groups=4"]


def _pin_user_namespace(pin: str, id_map: str) -> None:
    """A child unshares a user namespace; we map it, bind-mount it on pin, and reap the child."""
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(w)
        try:
            libc.unshare(libc.CLONE_NEWUSER)
            os.read(r, 1)  # wait until pinned
        finally:
            os._exit(0)
    os.close(r)
    try:
        for _ in range(500):
            if os.readlink(f"/proc/{child}/ns/user") != os.readlink("/proc/self/ns/user"):
                break
            time.sleep(0.002)
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{child}/{name}", "w") as f:
                f.write(id_map)
        libc.mount(f"/proc/{child}/ns/user", pin, None, libc.MS_BIND)
    finally:
        os.close(w)
        os.waitpid(child, 0)


def test_joins_a_pinned_user_namespace_by_path(open_bundle, tmp_path):
    """The pod's user namespace is pinned; the container joins it (and makes its own mount
    and pid namespaces inside it)."""
    base = 400000
    bundle = open_bundle
    _chown_tree(os.path.join(bundle, "rootfs"), base, base)
    pin = tmp_path / "crt-init-user"
    pin.touch()
    _pin_user_namespace(str(pin), f"0 {base} 65536\n")
    try:
        cfg = default_config(["sh", "-c", "cat /proc/self/uid_map; id -u"])
        cfg["linux"]["namespaces"].append({"type": "user", "path": str(pin)})
        res = run(bundle, cfg)
    finally:
        libc.umount2(str(pin), libc.MNT_DETACH)
    assert res.error == ""
    assert res.output.split() == ["0", str(base), "65536", "0"]


def test_idmapped_binds_in_a_user_namespace_joined_by_path(open_bundle, tmp_path):
    """What crid asks of its runtime for a hostUsers: false pod: the pod's user namespace
    joined by path, host files reached through `idmap` binds mapped like it."""
    import subprocess

    base = 400000
    _chown_tree(os.path.join(open_bundle, "rootfs"), base, base)
    vol = tmp_path / "crt-vol"
    vol.mkdir()
    (vol / "by-root").write_text("x")
    (vol / "by-1000").write_text("x")
    os.chown(vol / "by-1000", 1000, 1000)
    holder = subprocess.Popen(["unshare", "--user", "cat"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    try:
        holder.stdin.write(b"x\n")
        holder.stdin.flush()
        assert holder.stdout.readline() == b"x\n"
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{holder.pid}/{name}", "w") as f:
                f.write(f"0 {base} 65536\n")
        cfg = default_config(["sh", "-c", "id -u; stat -c '%n %u' /vol/by-root /vol/by-1000; "
                              "touch /vol/new"])
        cfg["linux"]["namespaces"].append({"type": "user",
                                           "path": f"/proc/{holder.pid}/ns/user"})
        cfg["mounts"].append({"destination": "/vol", "type": "bind", "source": str(vol),
                              "options": ["rbind", "rprivate", "idmap"]})
        res = run(open_bundle, cfg)
    finally:
        holder.stdin.close()
        holder.wait()
    assert res.error == ""
    assert res.output.splitlines() == ["0", "/vol/by-root 0", "/vol/by-1000 1000"]
    assert os.stat(vol / "new").st_uid == 0  # written back through the idmap


def test_idmapped_binds_without_mappings_need_a_user_namespace(bundle):
    cfg = default_config(["true"])
    cfg["mounts"].append({"destination": "/vol", "type": "bind", "source": "/tmp",
                          "options": ["rbind", "idmap"]})
    res = run(bundle, cfg)
    assert "needs the container to have a user namespace" in res.error


def test_a_submount_that_cannot_be_idmapped_fails_create_by_name(bundle, tmp_path):
    """`ridmap` of a tree holding proc: UnsupportedMount (the host's mounts are at fault, a
    named type crid maps to FAILED_PRECONDITION) naming the submount and its type."""
    vol = tmp_path / "crt-vol"
    (vol / "p").mkdir(parents=True)
    libc.mount("proc", str(vol / "p"), "proc", 0)
    try:
        cfg = default_config(["true"])
        maps = [{"containerID": 0, "hostID": 1000, "size": 10}]
        cfg["mounts"].append({"destination": "/vol", "type": "bind", "source": str(vol),
                              "options": ["rbind", "ridmap"], "uidMappings": maps,
                              "gidMappings": maps})
        res = run(bundle, cfg)
    finally:
        libc.umount2(str(vol / "p"), libc.MNT_DETACH)
    assert res.error.startswith("UnsupportedMount: "), res.error
    assert f"its submount {vol / 'p'} (proc) cannot be idmapped" in res.error
    assert res.children_left in (False, None)
