"""The container rootfs's mount logic against a recording fake of the mount calls: options,
order, and what is left when the kernel refuses (tests/integration/containers runs the same
code on the real kernel)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from crid.containers import rootfs
from crid.errors import Internal
from runtime.linux import libc
from tests.fakes.syscalls import RecordingMountCalls


def _layers(tmp_path: Path, n: int) -> list[Path]:
    out = []
    for i in range(n):
        (tmp_path / f"layer{i}").mkdir()
        out.append(tmp_path / f"layer{i}")
    return out


def test_one_overlay_over_the_layers_top_first(tmp_path: Path) -> None:
    calls = RecordingMountCalls()
    cdir = tmp_path / "c"
    top, bottom = _layers(tmp_path, 2)
    merged = rootfs.mount_rootfs([top, bottom], cdir, calls=calls)
    assert merged == cdir / "rootfs" and all((cdir / d).is_dir() for d in ("upper", "work"))
    [(source, target, fstype, flags, data)] = calls.named("mount")
    assert (source, target, fstype, flags) == ("overlay", str(merged), "overlay", 0)
    assert data == (f"lowerdir={top}:{bottom},upperdir={cdir / 'upper'},"
                    f"workdir={cdir / 'work'},index=off,volatile")


def test_an_image_without_layers_gets_an_empty_lower(tmp_path: Path) -> None:
    calls = RecordingMountCalls()
    rootfs.mount_rootfs([], tmp_path / "c", calls=calls)
    [(*_, data)] = calls.named("mount")
    assert str(data).startswith(f"lowerdir={tmp_path / 'c' / 'empty'},")


def test_too_many_layers_for_the_mount_options_mount_nothing(tmp_path: Path) -> None:
    calls = RecordingMountCalls()
    many = [tmp_path / ("x" * 200 + str(i)) for i in range(30)]
    with pytest.raises(Internal, match="30 layers exceed the mount option size limit"):
        rootfs.mount_rootfs(many, tmp_path / "c", calls=calls)
    assert calls.calls == []


def test_a_refused_mount_is_an_internal_error_naming_the_rootfs(tmp_path: Path) -> None:
    calls = RecordingMountCalls(fail={"mount": errno.EPERM})
    with pytest.raises(Internal, match=f"mounting rootfs at {tmp_path / 'c' / 'rootfs'}: "
                                       ".*Operation not permitted"):
        rootfs.mount_rootfs(_layers(tmp_path, 1), tmp_path / "c", calls=calls)
    assert not calls.is_mounted(tmp_path / "c" / "rootfs")


def test_unmount_detaches_every_stacked_mount_and_is_idempotent(tmp_path: Path) -> None:
    calls = RecordingMountCalls()
    cdir = tmp_path / "c"
    rootfs.mount_rootfs(_layers(tmp_path, 1), cdir, calls=calls)
    calls.mount("tmpfs", str(cdir / "rootfs"), "tmpfs")  # something stacked on top
    rootfs.unmount_rootfs(cdir, calls)
    assert not calls.is_mounted(cdir / "rootfs")
    assert calls.named("umount2") == [(str(cdir / "rootfs"), libc.MNT_DETACH)] * 2
    rootfs.unmount_rootfs(cdir, calls)  # nothing mounted: no call at all
    assert len(calls.named("umount2")) == 2


def test_a_refused_unmount_is_reported_and_the_directory_kept(tmp_path: Path) -> None:
    calls = RecordingMountCalls()
    cdir = tmp_path / "c"
    rootfs.mount_rootfs(_layers(tmp_path, 1), cdir, calls=calls)
    calls.fail["umount2"] = errno.EBUSY
    with pytest.raises(Internal, match="unmounting rootfs"):
        rootfs.remove_container_dir(cdir, calls)
    assert cdir.is_dir()  # never deleted below a live mount
    del calls.fail["umount2"]
    rootfs.remove_container_dir(cdir, calls)
    assert not cdir.exists()


def test_user_namespaced_pods_get_idmapped_layers_and_an_owned_upper(tmp_path: Path) -> None:
    calls = RecordingMountCalls()
    userns = tmp_path / "userns"  # stands in for the pod's pinned namespace
    userns.write_text("")
    cdir = tmp_path / "c"
    layers = _layers(tmp_path, 2)
    own = rootfs.PodUserns(str(userns), os.getuid(), os.getgid())
    rootfs.mount_rootfs(layers, cdir, own, calls=calls)
    assert [a[1] for a in calls.named("open_tree")] == [str(p) for p in layers]
    setattrs = calls.named("mount_setattr")
    assert [a[3] for a in setattrs] == [libc.MOUNT_ATTR_IDMAP] * 2
    [(*_, data)] = calls.named("mount")
    assert str(data).startswith("lowerdir=" + ":".join(f"/proc/self/fd/{fd}"
                                                         for fd in calls.open_fds) + ",")
    for fd in calls.open_fds:  # the overlay holds its layers: the clones' fds are closed
        with pytest.raises(OSError):
            os.fstat(fd)
    assert (cdir / "upper").stat().st_uid == os.getuid()


def test_a_layer_that_cannot_be_idmapped_mounts_nothing_and_closes_its_fds(
        tmp_path: Path) -> None:
    calls = RecordingMountCalls(fail={"mount_setattr": errno.EINVAL})
    userns = tmp_path / "userns"
    userns.write_text("")
    own = rootfs.PodUserns(str(userns), os.getuid(), os.getgid())
    with pytest.raises(Internal, match="idmapping layer"):
        rootfs.mount_rootfs(_layers(tmp_path, 2), tmp_path / "c", own, calls=calls)
    assert calls.named("mount") == []
    for fd in calls.open_fds:
        with pytest.raises(OSError):
            os.fstat(fd)
