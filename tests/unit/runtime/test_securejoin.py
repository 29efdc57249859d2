from __future__ import annotations

import os

import pytest

from runtime.linux import securejoin


@pytest.fixture
def root(tmp_path):  # type: ignore[no-untyped-def]
    r = tmp_path / "root"
    (r / "usr/lib").mkdir(parents=True)
    os.symlink("/", r / "etc")  # absolute: back to the root, not the host's /
    os.symlink("../../..", r / "usr/lib/up")  # relative: climbs at most to the root
    os.symlink("usr/lib", r / "lib")
    os.symlink("loop2", r / "loop1")
    os.symlink("loop1", r / "loop2")
    return str(r)


@pytest.mark.parametrize("unsafe, want", [
    ("/", ""), ("", ""), ("/usr/lib", "usr/lib"), ("../../x", "x"), ("/a/../../b", "b"),
    ("/etc/passwd", "passwd"), ("/etc/../etc/x", "x"), ("/usr/lib/up/y", "y"),
    ("/lib/z", "usr/lib/z"), ("lib/../q", "usr/q"), ("/missing/../m", "m"),
])
def test_resolution_stays_in_root(root, unsafe, want):
    assert securejoin.secure_join(root, unsafe) == os.path.join(root, want).rstrip("/")


def test_symlink_loop_is_an_error(root):
    with pytest.raises(securejoin.UnsafePath, match="too many symlinks"):
        securejoin.secure_join(root, "/loop1/x")


def test_mkdir_all_follows_symlinks_inside(root, tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    os.symlink(str(host), os.path.join(root, "out"))
    path = securejoin.mkdir_all(root, "/out/a/b")
    assert path == os.path.join(root, str(host).lstrip("/"), "a/b")
    assert os.path.isdir(path)
    assert list(host.iterdir()) == []


def test_create_file_through_absolute_symlink(root):
    path = securejoin.create_file(root, "/etc/crt-file")
    assert path == os.path.join(root, "crt-file") and os.path.isfile(path)


def test_within():
    assert securejoin.within("/a/b", "/a/b/c")
    assert securejoin.within("/a/b", "/a/b")
    assert not securejoin.within("/a/b", "/a/bc")
    assert not securejoin.within("/a/b", "/a/b/../c")


def test_open_in_root_rejects_outside(root, tmp_path):
    fd = securejoin.open_in_root(root, os.path.join(root, "usr"))
    os.close(fd)
    with pytest.raises(securejoin.UnsafePath, match="outside the container root"):
        securejoin.open_in_root(root, str(tmp_path))


def test_create_file_through_dangling_symlink(root):
    os.symlink("/run/resolve/stub.conf", os.path.join(root, "usr/resolv.conf"))
    path = securejoin.create_file(root, "/usr/resolv.conf")
    assert path == os.path.join(root, "run/resolve/stub.conf") and os.path.isfile(path)


@pytest.mark.parametrize("unsafe, want", [
    ("/usr/lib/new/deeper", "usr/lib/new/deeper"), ("/lib/new2", "usr/lib/new2"),
    ("/etc/etc/x", "x"), ("/usr/lib/up/up/y", "up/y"), ("usr", "usr"), ("/", ""),
])
def test_mkdir_all_stays_in_root(root, unsafe, want):
    path = securejoin.mkdir_all(root, unsafe)
    assert path == os.path.join(root, want).rstrip("/") and os.path.isdir(path)


def test_mkdir_all_through_a_file_fails(root):
    open(os.path.join(root, "usr/file"), "w").close()
    with pytest.raises(OSError):  # (the slow path's own error: FileExistsError)
        securejoin.mkdir_all(root, "/usr/file/x")


def test_mkdir_all_dangling_symlink_made_inside(root):
    os.symlink("/made/here", os.path.join(root, "dangling"))
    path = securejoin.mkdir_all(root, "/dangling/sub")
    assert path == os.path.join(root, "made/here/sub") and os.path.isdir(path)
