"""Less common spec fields: no_pivot, personality, cgroup namespace, devices, propagation."""

from __future__ import annotations

import os

from runtime.linux import libc
from tests.integration.runtime.bundle import default_config, make_rootfs, run


def test_no_pivot_uses_move_and_chroot(bundle):
    res = run(bundle, default_config(["sh", "-c", "ls /; hostname"]), no_pivot=True)
    assert res.error == ""
    assert res.output.split() == ["bin", "dev", "etc", "proc", "sys", "tmp", "crt-init-box"]


def test_personality_linux32(bundle):
    cfg = default_config(["sh", "-c", "uname -m"])
    cfg["linux"]["personality"] = {"domain": "LINUX32"}
    res = run(bundle, cfg)
    assert res.error == ""
    assert res.output.strip() == "i686"


def test_cgroup_namespace_hides_the_host_path(bundle):
    cfg = default_config(["sh", "-c", "grep -E '^[0-9]+:(memory|pids):' /proc/self/cgroup"])
    cfg["linux"]["namespaces"].append({"type": "cgroup"})
    res = run(bundle, cfg)
    assert res.error == ""
    assert sorted(line.split(":", 1)[1] for line in res.output.split()) == ["memory:/", "pids:/"]


def test_linux_devices_modes_owners_and_kinds(bundle):
    cfg = default_config(["sh", "-c", "stat -c '%n %F %t:%T %a %u:%g' /dev/crt-c /dev/crt-b "
                          "/dev/sub/crt-p"])
    cfg["linux"]["devices"] = [
        {"type": "c", "path": "/dev/crt-c", "major": 1, "minor": 3, "fileMode": 0o600,
         "uid": 7, "gid": 8},
        {"type": "b", "path": "/dev/crt-b", "major": 7, "minor": 0, "fileMode": 0o640},
        {"type": "p", "path": "/dev/sub/crt-p"},
    ]
    res = run(bundle, cfg)
    assert res.error == ""
    assert res.output.splitlines() == [
        "/dev/crt-c character special file 1:3 600 7:8",
        "/dev/crt-b block special file 7:0 640 0:0",
        "/dev/sub/crt-p fifo 0:0 666 0:0",
    ]


def test_rootfs_propagation_private(bundle):
    cfg = default_config(["awk", "$5 == \"/\" {print $7}", "/proc/self/mountinfo"])
    cfg["linux"]["rootfsPropagation"] = "rprivate"
    res = run(bundle, cfg)
    assert res.error == ""
    assert res.output.strip() == "-"  # no shared:/master: fields


def test_tmpfs_with_options_and_mqueue(bundle):
    cfg = default_config(["sh", "-c", "stat -c %a /scratch; grep ' /scratch ' "
                          "/proc/self/mountinfo | grep -o 'size=[0-9]*k'"])
    cfg["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                          "options": ["nosuid", "nodev", "mode=1770", "size=1024k"]})
    res = run(bundle, cfg)
    assert res.error == ""
    assert res.output.split() == ["1770", "size=1024k"]


def test_env_home_and_cwd_created(bundle):
    cfg = default_config(["sh", "-c", "pwd; echo $HOME $FOO"])
    cfg["process"]["cwd"] = "/work/dir"
    cfg["process"]["env"].append("FOO=bar")
    res = run(bundle, cfg)
    assert res.error == ""
    assert res.output.split() == ["/work/dir", "/root", "bar"]
    assert os.path.isdir(os.path.join(bundle, "rootfs/work/dir"))


def test_overlay_rootfs_like_crid_builds_it(tmp_path):
    """crid's containers run on an overlayfs mounted in the host namespace."""
    lower, upper, work, merged = (tmp_path / n for n in ("lower", "upper", "work", "rootfs"))
    make_rootfs(str(lower))
    for d in (upper, work, merged):
        d.mkdir()
    libc.mount("crt-init-overlay", str(merged), "overlay", 0,
               f"lowerdir={lower},upperdir={upper},workdir={work}")
    try:
        cfg = default_config(["sh", "-c", "echo hi > /tmp/w; cat /tmp/w; "
                              "awk '$5 == \"/\" {print $0}' /proc/self/mountinfo | "
                              "grep -c overlay"])
        res = run(str(tmp_path), cfg)
    finally:
        libc.umount2(str(merged), libc.MNT_DETACH)
    assert res.error == ""
    assert res.output.split() == ["hi", "1"]
    assert (upper / "tmp/w").read_text() == "hi\n"


def test_io_priority_scheduler_and_cpu_affinity(bundle):
    cfg = default_config(["sh", "-c", "grep -E '^Cpus_allowed_list' /proc/self/status; "
                          "cut -d' ' -f19,41 /proc/self/stat"])
    cfg["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
    cfg["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
    cfg["process"]["execCPUAffinity"] = {"final": "0"}
    res = run(bundle, cfg)
    assert res.error == ""
    # /proc/PID/stat field 19 is nice, field 41 the policy (3 = SCHED_BATCH)
    assert res.output.split() == ["Cpus_allowed_list:", "0", "7", "3"]


def test_time_namespace_offsets(bundle):
    with open("/proc/uptime") as f:
        host_uptime = float(f.read().split()[0])
    cfg = default_config(["cat", "/proc/uptime"])
    cfg["linux"]["namespaces"].append({"type": "time"})
    cfg["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 365}}
    res = run(bundle, cfg)
    assert res.error == ""
    shift = float(res.output.split()[0]) - host_uptime
    assert 86400 * 365 - 5 < shift < 86400 * 365 + 5


def test_only_stdio_and_preserved_fds_reach_the_process(bundle):
    # ls's own directory fd is the last one listed
    plain = run(bundle, default_config(["ls", "/proc/self/fd"]))
    assert plain.error == ""
    assert plain.output.split() == ["0", "1", "2", "3"]
    # Two fds given out of order, one of them at a number below the other's target: each
    # reaches the process at 3 + its index.
    first, second = os.pipe(), os.pipe()
    high = os.dup2(first[0], 40)
    try:
        os.write(first[1], b"one\n")
        os.write(second[1], b"two\n")
        for fd in (first[1], second[1]):
            os.close(fd)
        script = "head -n1 <&3; head -n1 <&4; ls /proc/self/fd"
        kept = run(bundle, default_config(["sh", "-c", script]),
                   preserve_fds=(high, second[0]))
    finally:
        for fd in (first[0], second[0], high):
            os.close(fd)
    assert kept.error == ""
    assert kept.output.split() == ["one", "two", "0", "1", "2", "3", "4", "5"]


def test_rro_reaches_submounts_and_ro_does_not(bundle, tmp_path):
    vol = tmp_path / "crt-vol"
    (vol / "sub").mkdir(parents=True)
    libc.mount("crt-sub", str(vol / "sub"), "tmpfs", 0, "size=1m")
    try:
        cfg = default_config(["sh", "-c", "touch /ro/sub/a && echo ro-sub-ok; "
                              "touch /rro/sub/b 2>&1; touch /rro/c 2>&1; true"])
        cfg["mounts"] += [
            {"destination": "/ro", "type": "bind", "source": str(vol),
             "options": ["rbind", "ro"]},
            {"destination": "/rro", "type": "bind", "source": str(vol),
             "options": ["rbind", "rprivate", "rro"]},
        ]
        res = run(bundle, cfg)
    finally:
        libc.umount2(str(vol / "sub"), libc.MNT_DETACH)
    assert res.error == ""
    lines = res.output.splitlines()
    assert lines[0] == "ro-sub-ok"
    assert [ln.endswith("Read-only file system") for ln in lines[1:]] == [True, True], lines
