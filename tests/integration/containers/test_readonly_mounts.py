"""Read-only volumes with a mount inside: `readonly` alone makes the top mount read-only and
leaves the submount as it is (rbind, then a bind remount without MS_REC, as runc does);
`recursive_read_only` (KEP-3857) makes every mount of the tree read-only with
mount_setattr(AT_RECURSIVE, MOUNT_ATTR_RDONLY)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from crid.api import api_pb2 as pb
from tests.integration.containers.helpers import ContainerRig, container_config

EROFS = "Read-only file system"


@pytest.fixture
def volume(rig: ContainerRig) -> Iterator[Path]:
    """A host directory with a tmpfs mounted at sub/ (the submount)."""
    vol = rig.base / "crt-vol"
    (vol / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "crt-sub", str(vol / "sub")],
                   check=True)
    try:
        yield vol
    finally:
        subprocess.run(["umount", "-l", str(vol / "sub")], check=True)


def _touch(rig: ContainerRig, cid: str, path: str) -> tuple[int, str]:
    out = rig.exec(cid, "/bin/touch", path)
    return out.exit_code, out.stderr.decode()


def test_readonly_leaves_submounts_writable_and_rro_reaches_them(
        rig: ContainerRig, volume: Path) -> None:
    pod = rig.run_pod()
    cid = rig.run(pod, container_config(command=("/bin/sleep", "3600"), mounts=[
        pb.Mount(container_path="/ro", host_path=str(volume), readonly=True),
        pb.Mount(container_path="/rro", host_path=str(volume), readonly=True,
                 recursive_read_only=True)]))
    code, err = _touch(rig, cid, "/ro/top")
    assert code != 0 and EROFS in err
    assert _touch(rig, cid, "/ro/sub/written") == (0, "")
    assert (volume / "sub" / "written").exists()
    code, err = _touch(rig, cid, "/rro/top")
    assert code != 0 and EROFS in err
    code, err = _touch(rig, cid, "/rro/sub/refused")
    assert code != 0 and EROFS in err, err
    assert not (volume / "sub" / "refused").exists()
    # Both are reported as asked for.
    st = rig.status(cid).status
    got = sorted((m.container_path, m.readonly, m.recursive_read_only) for m in st.mounts
                 if m.container_path in ("/ro", "/rro"))
    assert got == [("/ro", True, False), ("/rro", True, True)]
    mountinfo = rig.exec(cid, "/bin/cat", "/proc/self/mountinfo").stdout.decode()
    opts = {ln.split()[4]: ln.split()[5].split(",")[0] for ln in mountinfo.splitlines()}
    assert (opts["/ro"], opts["/ro/sub"], opts["/rro"], opts["/rro/sub"]) == \
        ("ro", "rw", "ro", "ro")
