"""`docker cp` both ways (GET/HEAD/PUT /containers/{id}/archive) with the CLI and docker-py,
on running and stopped containers, and hostile archives refused with nothing written."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import docker.errors
import pytest

from tests.integration.docker.conftest import DockerRig


@pytest.fixture
def rig(docker_rig: DockerRig) -> DockerRig:
    docker_rig.cli("pull", "-q", "busybox")
    return docker_rig


def _tree(base: Path) -> Path:
    src = base / "src"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "b.bin").write_bytes(os.urandom(70_000))
    (src / "run.sh").write_text("#!/bin/sh\necho run\n")
    (src / "run.sh").chmod(0o755)
    os.symlink("a.txt", src / "link")
    return src


def _snapshot(root: Path) -> dict[str, tuple[int, bytes | str]]:
    out: dict[str, tuple[int, bytes | str]] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = p.lstat()
            if p.is_symlink():
                out[rel] = (st.st_mode, os.readlink(p))
            elif p.is_file():
                out[rel] = (st.st_mode, p.read_bytes())
            else:
                out[rel] = (st.st_mode, "")
    return out


def test_cp_round_trip_running_container(rig: DockerRig, tmp_path: Path) -> None:
    src = _tree(tmp_path)
    rig.cli("run", "-d", "--name", "cp1", "busybox", "sleep", "600")
    rig.cli("cp", str(src), "cp1:/tmp/copied")
    out = rig.cli("exec", "cp1", "sh", "-c",
                  "cat /tmp/copied/a.txt; readlink /tmp/copied/link; /tmp/copied/run.sh; "
                  "stat -c '%u:%g %a' /tmp/copied/run.sh").stdout
    assert out == "alpha\na.txt\nrun\n0:0 755\n"
    back = tmp_path / "back"
    rig.cli("cp", "cp1:/tmp/copied", str(back))
    assert _snapshot(back) == _snapshot(src)
    # `dir/.` copies the contents into an existing directory
    into = tmp_path / "into"
    into.mkdir()
    rig.cli("cp", "cp1:/tmp/copied/.", str(into))
    assert (into / "sub" / "b.bin").read_bytes() == (src / "sub" / "b.bin").read_bytes()
    # a file to stdout is a tar with one entry named after the file
    tar = subprocess.run(["docker", "cp", "cp1:/tmp/copied/a.txt", "-"], env=rig.env(),
                         capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        assert t.getnames() == ["a.txt"]
        assert t.extractfile("a.txt").read() == b"alpha\n"  # type: ignore[union-attr]
    rig.cli("rm", "-f", "cp1")


def test_cp_into_and_out_of_a_stopped_container(rig: DockerRig, tmp_path: Path) -> None:
    (tmp_path / "conf").write_text("setting=1\n")
    rig.cli("create", "--name", "cp2", "busybox", "cat", "/etc/app.conf")
    rig.cli("cp", str(tmp_path / "conf"), "cp2:/etc/app.conf")
    rig.cli("start", "-a", "cp2")
    assert rig.cli("logs", "cp2").stdout == "setting=1\n"
    rig.cli("cp", "cp2:/etc/app.conf", str(tmp_path / "out"))  # exited now
    assert (tmp_path / "out").read_text() == "setting=1\n"
    rig.cli("rm", "cp2")


def test_cp_errors(rig: DockerRig, tmp_path: Path) -> None:
    rig.cli("run", "-d", "--name", "cp3", "busybox", "sleep", "600")
    missing = rig.cli("cp", "cp3:/no/such/file", str(tmp_path / "x"), check=False)
    assert missing.returncode != 0 and "No such container:path: cp3:/no/such/file" in missing.stderr
    (tmp_path / "f").write_text("x")
    nodir = rig.cli("cp", str(tmp_path / "f"), "cp3:/no/such/dir/", check=False)
    assert nodir.returncode != 0
    nocontainer = rig.cli("cp", "nosuch:/etc/hostname", str(tmp_path / "y"), check=False)
    assert nocontainer.returncode != 0 and "No such container" in nocontainer.stderr
    client = rig.client()
    try:
        c = client.containers.get("cp3")
        with pytest.raises(docker.errors.NotFound):
            c.put_archive("/no/such/dir", _tar({"f": b"x"}))
        with pytest.raises(docker.errors.APIError) as err:
            c.put_archive("/etc/hostname", _tar({"f": b"x"}))
        assert err.value.status_code == 400 and "not a directory" in str(err.value)
        with pytest.raises(docker.errors.APIError) as err:
            c.put_archive("/tmp", b"this is not a tar archive at all" * 100)
        assert err.value.status_code == 400
        with pytest.raises(docker.errors.NotFound):
            c.get_archive("/nope")
    finally:
        client.close()
    rig.cli("rm", "-f", "cp3")


def test_docker_py_archive_stat_and_symlinks(rig: DockerRig) -> None:
    client = rig.client()
    try:
        c = client.containers.run("busybox", ["sleep", "600"], detach=True, name="cp4")
        c.exec_run(["sh", "-c", "mkdir -p /data && echo hi > /data/f && ln -s /data/f /lnk"])
        stream, st = c.get_archive("/data/f")
        assert (st["name"], st["size"], st["mode"] & 0o777, st["linkTarget"]) == \
            ("f", 3, 0o644, "")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as t:
            assert t.extractfile("f").read() == b"hi\n"  # type: ignore[union-attr]
        _, st = c.get_archive("/lnk")
        assert st["linkTarget"] == "/data/f" and st["mode"] & (1 << 27)
        _, st = c.get_archive("/data")
        assert st["mode"] & (1 << 31) and st["name"] == "data"
        assert c.put_archive("/data", _tar({"new/deep.txt": b"deep\n"}))
        assert c.exec_run(["cat", "/data/new/deep.txt"]).output == b"deep\n"
        c.remove(force=True)
    finally:
        client.close()


def _tar(files: dict[str, bytes], links: dict[str, tuple[bytes, str]] | None = None,
         links_first: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        def add_links() -> None:
            for name, (kind, target) in (links or {}).items():
                info = tarfile.TarInfo(name)
                info.type, info.linkname = kind, target
                t.addfile(info)
        if links_first:
            add_links()
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        if not links_first:
            add_links()
    return buf.getvalue()


HOSTILE = {
    "dotdot name": _tar({"ok.txt": b"ok", "../../../../../tmp/crid-cp-escape": b"x"}),
    "hard link out": _tar({"ok.txt": b"ok"},
                          {"hl": (tarfile.LNKTYPE, "../../../../../etc/passwd")}),
    "relative symlink out": _tar({"ok.txt": b"ok"},
                                 {"sl": (tarfile.SYMTYPE, "../../../../../../")}),
    "device": _tar({"ok.txt": b"ok"}, {"dev": (tarfile.CHRTYPE, "")}),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_archive_is_refused_with_nothing_written(rig: DockerRig, kind: str) -> None:
    client = rig.client()
    try:
        c = client.containers.run("busybox", ["sleep", "600"], detach=True, name="cp5")
        c.exec_run(["mkdir", "/dest"])
        with pytest.raises(docker.errors.APIError) as err:
            c.put_archive("/dest", HOSTILE[kind])
        assert err.value.status_code == 400, err.value
        assert c.exec_run(["ls", "-A", "/dest"]).output == b""  # not even ok.txt
        assert not Path("/tmp/crid-cp-escape").exists()
        c.remove(force=True)
    finally:
        client.close()


def test_symlink_in_archive_or_container_stays_inside(rig: DockerRig, tmp_path: Path) -> None:
    """`a -> /` then `a/etc/owned`: resolved with the destination as `/`, as Docker's
    chrooted untar does; a container symlink to `/` on the way resolves in the container."""
    client = rig.client()
    try:
        c = client.containers.run("busybox", ["sleep", "600"], detach=True, name="cp6")
        c.exec_run(["sh", "-c", "mkdir /dest && ln -s / /dest/up && ln -s /etc /etc-link"])
        archive = _tar({"a/etc/owned": b"inside\n", "up/etc/owned2": b"inside2\n"},
                       {"a": (tarfile.SYMTYPE, "/")}, links_first=True)
        assert c.put_archive("/dest", archive)
        assert c.exec_run(["cat", "/dest/etc/owned", "/dest/etc/owned2"]).output == \
            b"inside\ninside2\n"
        assert c.exec_run(["ls", "/etc/owned"]).exit_code != 0
        assert not Path("/etc/owned").exists() and not Path("/etc/owned2").exists()
        # the destination path itself may be a symlink: followed inside the container
        assert c.put_archive("/etc-link", _tar({"via-link": b"v\n"}))
        assert c.exec_run(["cat", "/etc/via-link"]).output == b"v\n"
        c.remove(force=True)
    finally:
        client.close()


def test_read_only_rootfs_refuses_but_a_bind_takes_it(rig: DockerRig, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    rig.cli("run", "-d", "--name", "cp7", "--read-only", "-v", f"{shared}:/mnt", "busybox",
            "sleep", "600")
    client = rig.client()
    try:
        c = client.containers.get("cp7")
        with pytest.raises(docker.errors.APIError) as err:
            c.put_archive("/tmp", _tar({"f": b"x"}))
        assert err.value.status_code == 403
        assert c.put_archive("/mnt", _tar({"f": b"through the bind\n"}))
        assert (shared / "f").read_text() == "through the bind\n"
    finally:
        client.close()
    rig.cli("rm", "-f", "cp7")


def test_stopped_container_cp_goes_to_its_bind_source(rig: DockerRig, tmp_path: Path) -> None:
    """Stopped, a bind's target is its source directory, as the container sees it running."""
    shared, ro = tmp_path / "shared", tmp_path / "ro"
    shared.mkdir()
    ro.mkdir()
    (shared / "old").write_text("on the host\n")
    os.symlink("old", shared / "lnk")
    rig.cli("create", "--name", "cp8", "-v", f"{shared}:/data", "-v", f"{ro}:/ro:ro",
            "busybox", "cat", "/data/new")
    (tmp_path / "new").write_text("copied in\n")
    rig.cli("cp", str(tmp_path / "new"), "cp8:/data/new")
    assert (shared / "new").read_text() == "copied in\n"
    rig.cli("cp", "cp8:/data/old", str(tmp_path / "old"))
    assert (tmp_path / "old").read_text() == "on the host\n"
    client = rig.client()
    try:
        c = client.containers.get("cp8")
        _, st = c.get_archive("/data/lnk")
        assert st["linkTarget"] == "/data/old" and st["name"] == "lnk"
        _, st = c.get_archive("/data")
        assert st["name"] == "data" and st["mode"] & (1 << 31)
        with pytest.raises(docker.errors.APIError) as err:
            c.put_archive("/ro", _tar({"f": b"x"}))
        assert err.value.status_code == 403 and not (ro / "f").exists()
    finally:
        client.close()
    rig.cli("start", "-a", "cp8")
    assert rig.cli("logs", "cp8").stdout == "copied in\n"
    rig.cli("rm", "cp8")


def test_cp_reaches_a_volume_running_or_stopped(rig: DockerRig, tmp_path: Path) -> None:
    rig.cli("create", "--name", "cp9", "-v", "cpvol:/vol", "busybox", "cat", "/vol/in")
    (tmp_path / "in").write_text("into the volume\n")
    rig.cli("cp", str(tmp_path / "in"), "cp9:/vol/in")
    rig.cli("start", "-a", "cp9")
    assert rig.cli("logs", "cp9").stdout == "into the volume\n"
    rig.cli("run", "-d", "--name", "cp10", "--read-only", "-v", "cpvol:/vol", "busybox",
            "sleep", "600")
    rig.cli("cp", "cp10:/vol/in", str(tmp_path / "out"))
    assert (tmp_path / "out").read_text() == "into the volume\n"
    rig.cli("cp", str(tmp_path / "out"), "cp10:/vol/out")  # a volume under a read-only root
    assert rig.cli("exec", "cp10", "cat", "/vol/out").stdout == "into the volume\n"
    rig.cli("rm", "-f", "cp9", "cp10")
    rig.cli("volume", "rm", "cpvol")
