"""A default container seen from inside: isolation, mounts, masks, caps, limits."""

from __future__ import annotations

import os

from runtime import caps
from tests.integration.runtime.bundle import DEFAULT_CAPS, default_config, run


def _status_field(output: str, name: str) -> str:
    for line in output.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{name} not in {output!r}")


def test_hostname_and_private_pid_namespace(bundle):
    res = run(bundle, default_config(["sh", "-c", "hostname; echo $$; ls /proc | grep '^[0-9]'"]))
    assert res.error == ""
    # pid 1 is sh itself, the other number is ls's pipeline partner grep... only container pids
    lines = res.output.split()
    assert lines[0] == "crt-init-box"
    assert lines[1] == "1"
    assert all(int(p) < 10 for p in lines[2:])
    assert res.status == 0


def test_capabilities_are_the_configured_set(bundle):
    res = run(bundle, default_config(["cat", "/proc/self/status"]))
    assert res.error == ""
    want = f"{caps.to_mask(DEFAULT_CAPS, caps.last_cap()):016x}"
    assert _status_field(res.output, "CapEff") == want
    assert _status_field(res.output, "CapPrm") == want
    assert _status_field(res.output, "CapBnd") == want
    assert _status_field(res.output, "CapInh") == "0" * 16
    assert _status_field(res.output, "NoNewPrivs") == "1"


def test_masked_and_readonly_paths(bundle):
    script = ("cat /proc/keys | wc -c; ls /sys/firmware | wc -l; "
              "echo 1 > /proc/sys/kernel/domainname && echo WROTE; "
              "grep -c ' /proc/sys ro,' /proc/self/mountinfo")
    res = run(bundle, default_config(["sh", "-c", script]))
    assert res.error == ""
    assert res.output.split("\n")[0:2] == ["0", "0"]
    assert "WROTE" not in res.output
    assert "Read-only file system" in res.output
    assert res.output.strip().endswith("1")


def test_masks_kcore_and_sysrq_when_the_kernel_has_them(bundle):
    cfg = default_config(["sh", "-c", "cat /proc/kcore | wc -c; echo h > /proc/sysrq-trigger"])
    res = run(bundle, cfg)
    assert res.error == ""
    if os.path.exists("/proc/kcore"):
        assert res.output.split("\n")[0] == "0"
    assert res.status != 0  # sysrq-trigger is read-only (or absent on this kernel)


def test_rlimits_and_umask(bundle):
    cfg = default_config(["sh", "-c", "ulimit -n; ulimit -Hn; umask"])
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200}]
    cfg["process"]["user"]["umask"] = 0o027
    res = run(bundle, cfg)
    assert res.error == ""
    assert res.output.split() == ["100", "200", "0027"]


def test_default_devices_and_mounts(bundle):
    script = ("stat -c '%n %t:%T %a' /dev/null /dev/zero /dev/full /dev/random /dev/urandom "
              "/dev/tty; for l in ptmx fd stdin; do readlink /dev/$l; done; "
              "awk '$5 ~ /^\\/(dev\\/pts|dev\\/shm|dev\\/mqueue|sys|proc)$/ "
              "{for (i = 7; i <= NF; i++) if ($i == \"-\") print $5, $(i + 1)}' "
              "/proc/self/mountinfo")
    res = run(bundle, default_config(["sh", "-c", script]))
    assert res.error == ""
    lines = res.output.splitlines()
    assert lines[:6] == ["/dev/null 1:3 666", "/dev/zero 1:5 666", "/dev/full 1:7 666",
                         "/dev/random 1:8 666", "/dev/urandom 1:9 666", "/dev/tty 5:0 666"]
    assert lines[6:9] == ["pts/ptmx", "/proc/self/fd", "/proc/self/fd/0"]
    assert sorted(lines[9:]) == ["/dev/mqueue mqueue", "/dev/pts devpts", "/dev/shm tmpfs",
                                 "/proc proc", "/sys sysfs"]


def test_private_ptmx_works(bundle):
    res = run(bundle, default_config(["sh", "-c", "ls /dev/pts"]))
    assert res.error == ""
    assert res.output.split() == ["ptmx"]  # a fresh devpts instance: no host ptys


def test_cgroup_mount_shows_own_cgroup_read_only(bundle):
    res = run(bundle, default_config(["sh", "-c", "ls /sys/fs/cgroup; touch /sys/fs/cgroup/x"]))
    assert res.error == ""
    assert "memory" in res.output.split()
    assert "Read-only file system" in res.output


def test_readonly_root(bundle):
    cfg = default_config(["sh", "-c", "touch /x; pwd"])
    cfg["root"]["readonly"] = True
    cfg["process"]["cwd"] = "/new/cwd"  # created before the root turns read-only
    res = run(bundle, cfg)
    assert res.error == ""
    assert "touch: /x: Read-only file system" in res.output
    assert res.output.strip().endswith("/new/cwd")


def test_oom_score_adj_raise_and_clamped_lowering(bundle):
    with open("/proc/self/oom_score_adj") as f:
        own = int(f.read())
    cfg = default_config(["cat", "/proc/self/oom_score_adj"])
    cfg["process"]["oomScoreAdj"] = 500
    assert run(bundle, cfg).output.strip() == "500"
    cfg["process"]["oomScoreAdj"] = -999
    res = run(bundle, cfg)
    assert res.error == ""
    assert int(res.output) in (-999, own)


def test_sysctls_domainname_and_bind_mount_ro(bundle, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "f").write_text("hello")
    cfg = default_config(["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward "
                          "/proc/sys/kernel/domainname /mnt/f; echo; touch /mnt/g"])
    cfg["domainname"] = "crt-init-domain"
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    cfg["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(shared),
                          "options": ["rbind", "ro", "nosuid", "nodev"]})
    res = run(bundle, cfg)
    assert res.error == ""
    assert res.output.split("\n")[:3] == ["1", "crt-init-domain", "hello"]
    assert "Read-only file system" in res.output
    assert not (shared / "g").exists()
