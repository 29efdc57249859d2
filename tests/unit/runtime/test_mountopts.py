from __future__ import annotations

from runtime.init import mountopts
from runtime.linux import libc


def test_flags_data_and_propagation():
    o = mountopts.parse(("nosuid", "strictatime", "mode=755", "size=65536k", "rprivate"),
                        "tmpfs")
    assert o.flags == libc.MS_NOSUID | libc.MS_STRICTATIME
    assert o.data == "mode=755,size=65536k"
    assert o.propagation == (libc.MS_PRIVATE | libc.MS_REC,)
    assert not o.is_bind


def test_bind_variants():
    assert mountopts.parse((), "bind").is_bind
    o = mountopts.parse(("rbind", "ro", "nodev"))
    assert o.is_bind and o.flags & libc.MS_REC
    assert o.remount_flags == libc.MS_RDONLY | libc.MS_NODEV


def test_clearing_options_win_when_later():
    assert mountopts.parse(("ro", "rw")).flags & libc.MS_RDONLY == 0
    assert mountopts.parse(("nosuid", "suid")).flags == 0
    assert mountopts.parse(("exec", "noexec")).flags == libc.MS_NOEXEC


def test_ignored_and_statvfs_flags():
    assert mountopts.parse(("tmpcopyup", "idmap")).data == ""
    assert mountopts.statvfs_to_ms(1 | 2 | 8) == libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NOEXEC


def test_recursive_options_become_mount_setattr_attributes():
    o = mountopts.parse(("rbind", "ro", "rro", "rnosuid", "rnodev"))
    assert o.recursive and o.flags & libc.MS_RDONLY
    assert o.rec_set == libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NODEV
    assert o.rec_clr == 0
    assert mountopts.parse(("rro", "rrw")).rec_set == 0
    assert mountopts.parse(("rro", "rrw")).rec_clr == libc.MOUNT_ATTR_RDONLY
    assert not mountopts.parse(("rbind", "ro")).recursive


def test_recursive_atime_modes_replace_each_other():
    o = mountopts.parse(("rnoatime", "rstrictatime"))
    assert (o.rec_set, o.rec_clr) == (libc.MOUNT_ATTR_STRICTATIME, libc.MOUNT_ATTR__ATIME)
    o = mountopts.parse(("rnoatime", "ratime"))
    assert (o.rec_set, o.rec_clr) == (0, libc.MOUNT_ATTR__ATIME)


def test_idmap_options_are_not_filesystem_data():
    assert mountopts.parse(("rbind", "idmap", "ridmap")).data == ""
