from __future__ import annotations

from runtime import libc
from runtime.init import mountopts


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
    assert mountopts.parse(("tmpcopyup", "rro", "idmap")).data == ""
    assert mountopts.statvfs_to_ms(1 | 2 | 8) == libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NOEXEC
