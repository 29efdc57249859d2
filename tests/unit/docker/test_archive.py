"""`docker cp`'s path handling and archive checks against a plain directory standing in for a
container root: names as Docker gives them, a hostile archive refused before anything is
written, symlinks resolved with the destination as `/`."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from crid.docker.archive_fs import DIR_PATH, ContainerRoot, absolute, go_base, go_mode, stat_path
from crid.docker.archive_tar import tar_resource
from crid.docker.archive_untar import UntarOptions, extract
from crid.docker.errors import BadRequest
from crid.errors import NotFound


@pytest.mark.parametrize(("given", "want", "base"), [
    ("etc", "/etc", "etc"), ("/etc/", "/etc/", "etc"), ("/etc/.", "/etc/.", "."),
    ("/", "/", "/"), ("//a/../b", "/b", "b"), ("/../../x", "/x", "x"), (".", "/.", "."),
])
def test_paths_keep_docker_trailing_forms(given: str, want: str, base: str) -> None:
    assert absolute(given) == want
    assert go_base(want) == base


def test_go_modes() -> None:
    assert go_mode(stat.S_IFDIR | 0o755) == (1 << 31) | 0o755
    assert go_mode(stat.S_IFLNK | 0o777) == (1 << 27) | 0o777
    assert go_mode(stat.S_IFREG | stat.S_ISUID | 0o700) == (1 << 23) | 0o700


@pytest.fixture
def root(tmp_path: Path):  # noqa: ANN201
    base = tmp_path / "rootfs"
    (base / "etc").mkdir(parents=True)
    (base / "etc" / "conf").write_text("c\n")
    os.symlink("/etc", base / "etc-link")
    os.symlink("../../../..", base / "up")
    fd = os.open(base, DIR_PATH)
    yield ContainerRoot(fd, str(base), frozenset())
    os.close(fd)


def test_stat_and_links_resolve_inside(root: ContainerRoot) -> None:
    rel, st = stat_path(root, "/etc-link", "c")
    assert (rel, st.link_target, st.name) == ("etc-link", "/etc", "etc-link")
    rel, _ = stat_path(root, "/up/etc/conf", "c")  # `..` past the root stays at the root
    assert rel == "etc/conf"
    with pytest.raises(NotFound):
        stat_path(root, "/nope", "c")


def test_tar_names_rebased(root: ContainerRoot) -> None:
    data = b"".join(tar_resource(root, "etc", "etc"))
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        assert t.getnames() == ["etc", "etc/conf"]
    data = b"".join(tar_resource(root, "etc", "."))
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        assert t.getnames() == [".", "./conf"]


def _tar(*members: tuple[str, bytes, str]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.uid, info.gid = os.getuid(), os.getgid()  # kept: the tier runs without root
            if kind == tarfile.REGTYPE:
                info.size = len(payload)
                t.addfile(info, io.BytesIO(payload.encode()))
            else:
                info.linkname = payload
                t.addfile(info)
    buf.seek(0)
    return buf


@pytest.mark.parametrize("bad", [
    ("../escape", tarfile.REGTYPE, "x"),
    ("hl", tarfile.LNKTYPE, "../../etc/passwd"),
    ("d/sl", tarfile.SYMTYPE, "../../x"),
    ("dev", tarfile.CHRTYPE, ""),
])
def test_hostile_entry_refused_before_anything_is_written(tmp_path: Path,
                                                          bad: tuple[str, bytes, str]) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    fd = os.open(dest, DIR_PATH)
    try:
        with pytest.raises(BadRequest):
            extract(_tar(("first", tarfile.REGTYPE, "ok"), bad), fd, UntarOptions(keep_owner=True))
    finally:
        os.close(fd)
    assert os.listdir(dest) == [] and not (tmp_path / "escape").exists()


def test_archive_symlink_resolves_in_the_destination(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    fd = os.open(dest, DIR_PATH)
    try:
        extract(_tar(("a", tarfile.SYMTYPE, "/"), ("a/etc/owned", tarfile.REGTYPE, "in"),
                     ("/abs/f", tarfile.REGTYPE, "abs")), fd, UntarOptions(keep_owner=True))
    finally:
        os.close(fd)
    assert (dest / "etc" / "owned").read_text() == "in"
    assert (dest / "abs" / "f").read_text() == "abs"


def test_no_overwrite_dir_with_file(root: ContainerRoot) -> None:
    with pytest.raises(BadRequest, match="cannot overwrite directory"):
        extract(_tar(("etc", tarfile.REGTYPE, "x")), root.fd,
                UntarOptions(True, no_overwrite_dir_non_dir=True))
