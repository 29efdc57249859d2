"""cgroupsPath parsing, systemd slice expansion, /proc parsers."""

from __future__ import annotations

import pytest

from runtime.cgroups import (
    CgroupError,
    CgroupPath,
    Mount,
    detect_version,
    expand_slice,
    parse_cgroups_path,
)
from runtime.cgroups.paths import dir_in_mount, parse_mountinfo, parse_proc_cgroup
from runtime.errors import SpecError


@pytest.mark.parametrize(("value", "expected"), [
    ("/kubepods/burstable/pod1/abc", "/kubepods/burstable/pod1/abc"),
    ("//a/./b/", "/a/b"),
    ("a/b", "a/b"),
    ("", "ctr1"),
    (None, "ctr1"),
    ("system.slice:crio:abc", "/system.slice/crio-abc.scope"),
    ("kubepods-besteffort-pod1.slice:crio:abc",
     "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/crio-abc.scope"),
    (":crio:abc", "/system.slice/crio-abc.scope"),
    ("-.slice::abc", "/abc.scope"),
    ("user.slice:x:machine.slice", "/user.slice/machine.slice"),
])
def test_parse_cgroups_path(value: str | None, expected: str) -> None:
    assert parse_cgroups_path(value, "ctr1") == CgroupPath(expected)


@pytest.mark.parametrize(("value", "message"), [
    ("/a/../../etc", "must not contain '..'"),
    ("../x", "must not contain '..'"),
    ("/", "names the hierarchy root"),
    ("a\0b", "without NUL"),
    ("system.slice:crio:", "has no name"),
    ("bad--x.slice:crio:abc", "invalid systemd slice"),
    ("system:crio:abc", "invalid systemd slice"),
    ("system.slice:cr io:abc", "has characters outside"),
])
def test_bad_cgroups_paths_name_the_field(value: str, message: str) -> None:
    with pytest.raises(SpecError, match=message) as e:
        parse_cgroups_path(value, "ctr1")
    assert e.value.field == "linux.cgroupsPath"


def test_expand_slice() -> None:
    assert expand_slice("a-b-c.slice") == "/a.slice/a-b.slice/a-b-c.slice"
    assert expand_slice("-.slice") == "/"


MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
50 23 0:40 /sub /mnt/my\\040cg rw - cgroup2 cgroup2 rw
"""


def test_parse_mountinfo() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert mounts == [
        Mount("/sys/fs/cgroup/cpu,cpuacct", "/", 1, frozenset({"cpu", "cpuacct"})),
        Mount("/sys/fs/cgroup/memory", "/", 1, frozenset({"memory"})),
        Mount("/sys/fs/cgroup/systemd", "/", 1, frozenset({"name=systemd"})),
        Mount("/sys/fs/cgroup/unified", "/", 2, frozenset()),
        Mount("/mnt/my cg", "/sub", 2, frozenset()),
    ]
    assert detect_version(mounts) == 1
    assert detect_version([Mount("/sys/fs/cgroup", "/", 2, frozenset())]) == 2
    with pytest.raises(CgroupError):
        detect_version([])


def test_parse_proc_cgroup() -> None:
    text = "9:name=systemd:/\n2:cpu,cpuacct:/a\n4:memory:/m/x\n0::/u\n"
    assert parse_proc_cgroup(text) == {"name=systemd": "/", "cpu": "/a", "cpuacct": "/a",
                                       "memory": "/m/x", "": "/u"}


def test_dir_in_mount_respects_the_mount_root() -> None:
    m = Mount("/mnt/cg", "/sub", 2, frozenset())
    assert dir_in_mount(m, "/sub/a/b") == "/mnt/cg/a/b"
    with pytest.raises(CgroupError, match="outside the part of the hierarchy"):
        dir_in_mount(m, "/other")
