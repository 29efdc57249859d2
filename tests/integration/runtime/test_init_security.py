"""Users, capabilities, no_new_privs, seccomp and symlink escapes from inside a container."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from runtime import caps
from tests.integration.runtime.bundle import default_config, run


def _field(output: str, name: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in output.splitlines()
                if line.startswith(name + ":"))


def test_non_root_user_groups_and_no_caps(bundle):
    cfg = default_config(["sh", "-c", "id; grep -E '^(Cap|NoNewPrivs)' /proc/self/status"])
    cfg["process"]["user"] = {"uid": 65534, "gid": 65534, "additionalGids": [5, 7]}
    res = run(bundle, cfg)
    assert res.error == ""
    assert res.output.splitlines()[0] == "uid=65534(nobody) gid=65534(nobody) groups=5,7"
    assert _field(res.output, "CapEff") == "0" * 16
    assert _field(res.output, "CapPrm") == "0" * 16
    assert _field(res.output, "NoNewPrivs") == "1"


def test_non_root_user_keeps_ambient_capability(bundle):
    cfg = default_config(["sh", "-c", "grep ^Cap /proc/self/status"])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    keep = ["CAP_NET_BIND_SERVICE"]
    cfg["process"]["capabilities"] = {k: keep for k in
                                      ("bounding", "effective", "permitted", "inheritable",
                                       "ambient")}
    res = run(bundle, cfg)
    assert res.error == ""
    want = f"{caps.to_mask(keep, caps.last_cap()):016x}"
    for name in ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"):
        assert _field(res.output, name) == want, name


def _install_setuid_id(rootfs: str) -> None:
    """coreutils' id (busybox drops setuid on its own) made setuid root, with its libraries."""
    out = subprocess.run(["ldd", "/usr/bin/id"], capture_output=True, text=True, check=True)
    libs = re.findall(r"(/\S+)", out.stdout)
    for path in [*libs, "/usr/bin/id"]:
        dest = rootfs + os.path.realpath(path) if path != "/usr/bin/id" else rootfs + "/suid-id"
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy(path, dest)
        if path in libs and os.path.realpath(path) != path:  # keep the name ld.so looks up
            os.makedirs(os.path.dirname(rootfs + path), exist_ok=True)
            if not os.path.lexists(rootfs + path):
                os.symlink(os.path.realpath(path), rootfs + path)
    os.chmod(rootfs + "/suid-id", 0o4755)


def test_setuid_binary_is_inert_with_no_new_privs(bundle):
    _install_setuid_id(os.path.join(bundle, "rootfs"))
    cfg = default_config(["/suid-id"])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cfg["process"]["capabilities"] = {k: ["CAP_SETUID", "CAP_SETGID"] for k in ("bounding",)}
    res = run(bundle, cfg)
    assert res.error == ""
    assert res.output.strip() == "uid=1000 gid=1000 groups=1000"
    cfg["process"]["noNewPrivileges"] = False  # the control: without it the bit works
    res = run(bundle, cfg)
    assert res.output.strip() == "uid=1000 gid=1000 euid=0(root) groups=1000"


def test_default_container_cannot_mount_unshare_or_ptrace_pid1(bundle):
    script = ("mount -t tmpfs none /tmp 2>&1 | head -1; "
              "unshare -m true 2>&1 | head -1; "
              "nsenter -t 1 -m true 2>&1 | head -1")
    cfg = default_config(["sh", "-c", script])
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    res = run(bundle, cfg)
    assert res.error == ""
    lines = res.output.splitlines()
    assert "permission denied" in lines[0].lower()
    assert "Operation not permitted" in lines[1]
    assert "Operation not permitted" in lines[2] or "Permission denied" in lines[2]


def test_seccomp_blocks_syscall_with_errno(bundle):
    cfg = default_config(["sh", "-c", "mkdir /tmp/d && echo MADE; echo still-running"])
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 1}],
    }
    res = run(bundle, cfg)
    assert res.error == ""
    assert "MADE" not in res.output
    assert "Operation not permitted" in res.output
    assert res.output.strip().endswith("still-running")


def test_seccomp_without_no_new_privs_loads_before_user_switch(bundle):
    cfg = default_config(["sh", "-c", "mkdir /tmp/d 2>&1; id -u"])
    cfg["process"]["noNewPrivileges"] = False
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 13}],
    }
    res = run(bundle, cfg)
    assert res.error == ""
    assert "Permission denied" in res.output
    assert res.output.strip().endswith("1000")


def _host_mounts_of(tmp: str) -> list[str]:
    """Host mounts under the test's directory or named like ours (other helpers mount too)."""
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if tmp in line or "crt-init-" in line]


def test_rootfs_symlink_to_host_root_mounts_nothing_outside(bundle, tmp_path):
    rootfs = tmp_path / "rootfs"
    # /etc -> / and /escape -> /tmp/<host dir>: both must stay inside the rootfs
    shutil.rmtree(rootfs / "etc")
    os.symlink("/", rootfs / "etc")
    host_dir = tmp_path / "hostdir"
    host_dir.mkdir()
    os.symlink(str(host_dir), rootfs / "escape")
    cfg = default_config(["sh", "-c", "grep -E 'crt-init-(a|b|c)' /proc/self/mountinfo "
                          "| cut -d' ' -f5"])
    cfg["mounts"] += [
        {"destination": "/etc/crt-init-a", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/escape/crt-init-b", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "../../crt-init-c", "type": "tmpfs", "source": "tmpfs"},
    ]
    res = run(bundle, cfg)
    assert res.error == ""
    assert sorted(res.output.split()) == ["/crt-init-a", "/crt-init-c",
                                          f"{host_dir}/crt-init-b"]
    assert not os.path.exists("/crt-init-a") and not os.path.exists("/crt-init-c")
    assert list(host_dir.iterdir()) == []
    assert (rootfs / "crt-init-a").is_dir()
    assert os.path.isdir(f"{rootfs}{host_dir}/crt-init-b")
    assert _host_mounts_of(str(tmp_path)) == []


def test_symlinked_device_path_stays_inside(bundle, tmp_path):
    rootfs = tmp_path / "rootfs"
    host_dir = tmp_path / "hostdev"
    host_dir.mkdir()
    os.symlink(str(host_dir), rootfs / "devlink")
    cfg = default_config(["sh", "-c", "stat -c '%t:%T' /devlink/crt-init-null"])
    cfg["linux"]["devices"] = [{"type": "c", "path": "/devlink/crt-init-null", "major": 1,
                                "minor": 3}]
    res = run(bundle, cfg)
    assert res.error == ""
    assert res.output.strip() == "1:3"
    assert list(host_dir.iterdir()) == []
