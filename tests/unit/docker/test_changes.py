"""docker diff's reading of a writable layer and commit's --change lines, on plain trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crid.build.errors import BuildError
from crid.build.instructions import apply_changes
from crid.docker.changes import (
    ADDED,
    DELETED,
    MODIFIED,
    Change,
    WritableLayer,
    changes,
    mount_stubs,
)


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_added_modified_deleted_and_mount_stubs(tmp_path: Path) -> None:
    lower = _tree(tmp_path / "lower", {"etc/passwd": "root", "etc/group": "g", "bin/sh": "x",
                                       "proc/": "", "usr/lib/": ""})
    upper = _tree(tmp_path / "upper", {"etc/passwd": "root2", "etc/.wh.group": "",
                                       "new/file": "n", "etc/hosts": "", "dev/shm/": "",
                                       "proc/": "", "usr/lib/": ""})
    os.utime(upper / "usr" / "lib", ns=(0, os.stat(lower / "usr" / "lib").st_mtime_ns))
    os.utime(upper / "usr", ns=(0, os.stat(lower / "usr").st_mtime_ns))
    os.chmod(upper / "usr", os.stat(lower / "usr").st_mode)
    os.chmod(upper / "usr" / "lib", os.stat(lower / "usr" / "lib").st_mode)
    stubs = mount_stubs(upper, ["/etc/hosts", "/dev/shm", "/proc", "/sys"])
    assert stubs == {"etc/hosts", "dev/shm", "dev", "proc"}
    found = changes(WritableLayer(upper, stubs, (lower,)))
    assert found == [Change("/etc", MODIFIED), Change("/etc/group", DELETED),
                     Change("/etc/passwd", MODIFIED), Change("/new", ADDED),
                     Change("/new/file", ADDED)]


def test_a_written_mount_point_is_a_change(tmp_path: Path) -> None:
    upper = _tree(tmp_path / "upper", {"etc/hosts": "127.0.0.1 me"})
    assert mount_stubs(upper, ["/etc/hosts"]) == frozenset()


def test_symlinks_in_the_layers_are_not_followed(tmp_path: Path) -> None:
    outside = _tree(tmp_path / "outside", {"secret": "s"})
    lower = tmp_path / "lower"
    lower.mkdir()
    (lower / "link").symlink_to(outside)
    upper = _tree(tmp_path / "upper", {"link/secret": "s"})
    # /link is a directory in the upper: the image's symlink is not looked through
    assert Change("/link/secret", ADDED) in changes(WritableLayer(upper, frozenset(), (lower,)))


def test_apply_changes_sets_the_config_as_a_build_would() -> None:
    config: dict = {"Env": ["PATH=/bin"], "Cmd": ["sh"], "WorkingDir": "/srv"}
    apply_changes(config, ['ENTRYPOINT ["/bin/app"]', "ENV A=1 B=$PATH", "WORKDIR data",
                           "EXPOSE 80/udp 8080", "USER 1000:1000", "LABEL x=y",
                           "VOLUME /data", "STOPSIGNAL SIGINT", ""])
    assert config == {
        "Env": ["PATH=/bin", "A=1", "B=/bin"], "Cmd": None, "Entrypoint": ["/bin/app"],
        "WorkingDir": "/srv/data", "ExposedPorts": {"80/udp": {}, "8080/tcp": {}},
        "User": "1000:1000", "Labels": {"x": "y"}, "Volumes": {"/data": {}},
        "StopSignal": "SIGINT"}
    apply_changes(config, ["CMD echo hi"])
    assert config["Cmd"] == ["/bin/sh", "-c", "echo hi"]


@pytest.mark.parametrize("line", ["RUN echo", "FROM busybox", "COPY a b", "ADD a b", "ARG x",
                                  "NOPE x", "EXPOSE 70000", "WORKDIR"])
def test_apply_changes_refuses_what_a_commit_cannot_do(line: str) -> None:
    with pytest.raises(BuildError):
        apply_changes({}, [line])
