"""The init's mount logic (runtime/init/mounts.py, rootfs.py) against a recording fake of the
mount calls: which calls, in which order, with which flags, and what happens when the kernel
refuses one. tests/integration/runtime runs the same code on the real kernel."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from runtime.init import mountopts, mounts, rootfs
from runtime.init.mounts import CgroupHierarchy
from runtime.linux import libc
from runtime.spec import parse_spec
from runtime.spec.model import Mount
from tests.fakes.syscalls import RecordingMountCalls

BIND = libc.MS_BIND | libc.MS_REC
REMOUNT = libc.MS_BIND | libc.MS_REMOUNT


def _no_cgroups() -> tuple[CgroupHierarchy, ...]:
    raise AssertionError("only a cgroup mount asks for the cgroups")


def _mounts(calls: RecordingMountCalls) -> list[tuple[object, ...]]:
    """The mount calls, their /proc/self/fd/N targets as the paths they were opened for."""
    return [(src, tgt, fstype, flags, data) for src, tgt, fstype, flags, data in
            calls.named("mount")]


@pytest.fixture
def root(tmp_path: Path) -> str:
    (tmp_path / "rootfs").mkdir()
    return str(tmp_path / "rootfs")


def _entry(root: str, m: Mount, calls: RecordingMountCalls, bundle: str = "/b",
           cgroups=_no_cgroups) -> None:  # type: ignore[no-untyped-def]
    mounts.mount_entry(root, bundle, m, cgroups, None, calls)


def test_a_read_only_bind_is_bound_then_remounted_read_only(root: str, tmp_path: Path) -> None:
    calls, src = RecordingMountCalls(), tmp_path / "src"
    src.mkdir()
    _entry(root, Mount("/data", "bind", str(src), ("rbind", "ro", "nosuid")), calls)
    (bsrc, btgt, bfs, bflags, _), (rsrc, rtgt, _, rflags, _) = _mounts(calls)
    assert (bsrc, bfs, bflags) == (str(src), None, BIND)
    assert btgt.startswith("/proc/self/fd/")  # through the fd checked to be inside the root
    assert (rsrc, rtgt) == (None, os.path.join(root, "data"))
    assert rflags == REMOUNT | libc.MS_RDONLY | libc.MS_NOSUID
    assert os.path.isdir(os.path.join(root, "data"))


def test_a_bind_of_a_file_makes_a_file_and_a_relative_source_is_the_bundles(
        root: str, tmp_path: Path) -> None:
    calls = RecordingMountCalls()
    (tmp_path / "hosts").write_text("127.0.0.1 localhost\n")
    _entry(root, Mount("/etc/hosts", "bind", "hosts", ("bind",)), calls, bundle=str(tmp_path))
    [(src, _, _, flags, _)] = _mounts(calls)
    assert (src, flags) == (str(tmp_path / "hosts"), libc.MS_BIND)
    assert os.path.isfile(os.path.join(root, "etc/hosts"))


def test_a_destination_through_a_symlink_stays_inside_the_root(root: str) -> None:
    calls = RecordingMountCalls()
    os.symlink("/", os.path.join(root, "etc"))  # a rootfs's /etc -> / must not reach the host's
    _entry(root, Mount("/etc/conf", "tmpfs", "tmpfs"), calls)
    [(_, _, fstype, _, _)] = _mounts(calls)
    assert fstype == "tmpfs"
    assert os.path.realpath(os.path.join(root, "conf")) in calls.table


def test_a_remount_the_kernel_refuses_is_retried_with_the_locked_flags(root: str,
                                                                      tmp_path: Path) -> None:
    refused: list[int] = []

    def refuse(name: str, args: tuple[object, ...]) -> int | None:
        flags = int(args[3])  # type: ignore[call-overload]
        if flags & libc.MS_REMOUNT and not refused:
            refused.append(flags)
            return errno.EPERM
        return None
    calls = RecordingMountCalls(refuse=refuse)
    _entry(root, Mount("/data", "bind", str(tmp_path), ("rbind", "ro")), calls)
    first, retry = (c[3] for c in _mounts(calls)[1:])
    assert first == REMOUNT | libc.MS_RDONLY
    locked = mountopts.statvfs_to_ms(os.statvfs(os.path.join(root, "data")).f_flag)
    assert retry == first | locked


def test_a_remount_refused_otherwise_fails(root: str, tmp_path: Path) -> None:
    calls = RecordingMountCalls(refuse=lambda n, a: errno.EACCES if int(a[3]) & libc.MS_REMOUNT
                                else None)  # type: ignore[call-overload]
    with pytest.raises(OSError) as e:
        _entry(root, Mount("/data", "bind", str(tmp_path), ("rbind", "ro")), calls)
    assert e.value.errno == errno.EACCES and len(_mounts(calls)) == 2  # no retry


def test_sysfs_refused_binds_the_hosts_read_only(root: str) -> None:
    calls = RecordingMountCalls(refuse=lambda n, a: errno.EPERM if a[2] == "sysfs" else None)
    _entry(root, Mount("/sys", "sysfs", "sysfs", ("nosuid", "noexec", "nodev", "ro")), calls)
    sysfs, bind, ro = _mounts(calls)
    assert sysfs[2] == "sysfs"
    assert bind == ("/sys", os.path.join(root, "sys"), None, BIND, None)
    assert ro[3] == REMOUNT | libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NOEXEC | libc.MS_NODEV


def test_another_refused_mount_is_not_papered_over(root: str) -> None:
    calls = RecordingMountCalls(refuse=lambda n, a: errno.EPERM)
    with pytest.raises(OSError) as e:
        _entry(root, Mount("/proc", "proc", "proc"), calls)
    assert e.value.errno == errno.EPERM and len(_mounts(calls)) == 1


def test_propagation_follows_the_mount_and_recursive_options_use_mount_setattr(
        root: str, tmp_path: Path) -> None:
    calls = RecordingMountCalls()
    _entry(root, Mount("/data", "bind", str(tmp_path), ("rbind", "rprivate", "rro")), calls)
    bind, private = _mounts(calls)
    assert bind[3] == BIND
    assert private == (None, os.path.join(root, "data"), None, libc.MS_PRIVATE | libc.MS_REC, None)
    [(_, path, flags, attr_set, _)] = calls.named("mount_setattr")
    assert (path, flags, attr_set) == ("", libc.AT_EMPTY_PATH | libc.AT_RECURSIVE,
                                       libc.MOUNT_ATTR_RDONLY)
    assert [n for n, _ in calls.calls] == ["mount", "mount", "mount_setattr"]


def test_cgroup_v1_is_a_tmpfs_with_each_hierarchy_bound_below(root: str,
                                                               tmp_path: Path) -> None:
    calls = RecordingMountCalls()
    hierarchies = (CgroupHierarchy("cpu,cpuacct", str(tmp_path / "cpu")),
                   CgroupHierarchy("pids", str(tmp_path / "pids")),
                   CgroupHierarchy("", str(tmp_path / "unified")))
    _entry(root, Mount("/sys/fs/cgroup", "cgroup", "cgroup", ("nosuid", "ro")), calls,
           cgroups=lambda: hierarchies)
    target = os.path.join(root, "sys/fs/cgroup")
    tmpfs, *rest, last = _mounts(calls)
    assert (tmpfs[0], tmpfs[2], tmpfs[3], tmpfs[4]) == ("tmpfs", "tmpfs", libc.MS_NOSUID,
                                                        "mode=755")  # written while made
    binds = [(src, flags) for src, _, _, flags, _ in rest if not flags & libc.MS_REMOUNT]
    assert binds == [(str(tmp_path / "cpu"), BIND), (str(tmp_path / "pids"), BIND)]
    assert last == (None, target, None, REMOUNT | libc.MS_RDONLY | libc.MS_NOSUID, None)
    assert sorted(os.listdir(target)) == ["cpu", "cpu,cpuacct", "cpuacct", "pids"]
    assert os.readlink(os.path.join(target, "cpu")) == "cpu,cpuacct"


def test_cgroup_v2_alone_binds_the_containers_cgroup(root: str, tmp_path: Path) -> None:
    calls = RecordingMountCalls()
    _entry(root, Mount("/sys/fs/cgroup", "cgroup2", "cgroup"), calls,
           cgroups=lambda: (CgroupHierarchy("", str(tmp_path)),))
    bind, remount = _mounts(calls)
    assert (bind[0], bind[3]) == (str(tmp_path), BIND)
    assert remount[3] == REMOUNT


def test_no_cgroups_no_mount(root: str) -> None:
    calls = RecordingMountCalls()
    _entry(root, Mount("/sys/fs/cgroup", "cgroup", "cgroup"), calls, cgroups=lambda: ())
    assert calls.calls == []


def _spec(mounts_: list[dict], **linux: object) -> object:
    return parse_spec({"ociVersion": "1.2.0", "root": {"path": "rootfs"},
                       "mounts": mounts_, "linux": linux})


def test_mount_all_stops_at_the_first_failure_and_names_it(root: str) -> None:
    calls = RecordingMountCalls(refuse=lambda n, a: errno.ENODEV if a[2] == "mqueue" else None)
    spec = _spec([{"destination": "/proc", "type": "proc", "source": "proc"},
                  {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"},
                  {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}])
    with pytest.raises(OSError, match="mounting mqueue 'mqueue' on /dev/mqueue: ") as e:
        rootfs.mount_all(spec, root, "/b", _no_cgroups, None, calls)  # type: ignore[arg-type]
    assert e.value.errno == errno.ENODEV
    assert [c[2] for c in _mounts(calls)] == ["proc", "mqueue"]  # /tmp is not tried


def test_prepare_makes_the_nearest_mount_above_the_root_private(root: str) -> None:
    parent = os.path.dirname(root)

    def refuse(name: str, args: tuple[object, ...]) -> int | None:
        # EINVAL: not a mount point; the rootfs and its parent are plain directories
        return errno.EINVAL if args[1] in (root, parent) and args[3] == libc.MS_PRIVATE else None
    calls = RecordingMountCalls(refuse=refuse)
    rootfs.prepare(root, "", None, calls)
    got = _mounts(calls)
    assert got[0] == (None, "/", None, libc.MS_SLAVE | libc.MS_REC, None)
    assert [c[1] for c in got[1:4]] == [root, parent, os.path.dirname(parent)]
    assert got[-1] == (root, root, None, BIND, None)


def test_prepare_applies_a_non_recursive_propagation_to_the_whole_tree(root: str) -> None:
    calls = RecordingMountCalls()
    rootfs.prepare(root, "private", None, calls)
    assert _mounts(calls)[0][3] == libc.MS_PRIVATE | libc.MS_REC


def test_prepare_gives_up_on_another_error(root: str) -> None:
    calls = RecordingMountCalls(refuse=lambda n, a: errno.EPERM if a[3] == libc.MS_PRIVATE
                                else None)
    with pytest.raises(OSError) as e:
        rootfs.prepare(root, "", None, calls)
    assert e.value.errno == errno.EPERM and len(_mounts(calls)) == 2


def test_finish_binds_readonly_paths_masks_the_others_and_skips_the_missing(
        tmp_path: Path) -> None:
    calls = RecordingMountCalls()
    (tmp_path / "ro").mkdir()
    (tmp_path / "secret").write_text("x")
    (tmp_path / "hidden").mkdir()
    spec = _spec([], readonlyPaths=[str(tmp_path / "ro"), str(tmp_path / "nope")],
                 maskedPaths=[str(tmp_path / "secret"), str(tmp_path / "hidden"),
                              str(tmp_path / "gone")], rootfsPropagation="rslave")
    rootfs.finish(spec, calls)  # type: ignore[arg-type]
    ro, hidden = str(tmp_path / "ro"), str(tmp_path / "hidden")
    assert _mounts(calls) == [
        (None, "/", None, libc.MS_SLAVE | libc.MS_REC, None),
        (ro, ro, None, BIND, None), (None, ro, None, REMOUNT | libc.MS_RDONLY, None),
        ("/dev/null", str(tmp_path / "secret"), None, libc.MS_BIND, None),
        ("tmpfs", hidden, "tmpfs", libc.MS_RDONLY, None)]
