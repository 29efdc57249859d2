"""The volume store on disk (whole or absent after any crash), and how a create body names
its volumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crid.docker.container_volumes import with_image_volumes
from crid.docker.create_body import VolumeMount, parse_create
from crid.docker.errors import BadRequest
from crid.errors import AlreadyExists, InvalidArgument, NotFound
from crid.volumes import ANONYMOUS_LABEL, VolumeStore, copy_up


def test_create_get_list_remove(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path / "volumes")
    vol = store.create("data", {"a": "b"})
    assert vol.mountpoint == tmp_path / "volumes" / "data" / "_data"
    assert vol.mountpoint.is_dir() and not vol.anonymous
    assert store.get("data") == vol
    assert json.loads((tmp_path / "volumes" / "data" / "volume.json").read_text())["labels"] \
        == {"a": "b"}
    with pytest.raises(AlreadyExists):
        store.create("data")
    assert store.ensure("data") == vol
    assert store.create("anon", {ANONYMOUS_LABEL: ""}).anonymous
    assert [v.name for v in store.list()] == ["anon", "data"]
    store.remove("data")
    with pytest.raises(NotFound):
        store.get("data")
    with pytest.raises(NotFound):
        store.remove("data")
    assert sorted(p.name for p in (tmp_path / "volumes").iterdir()) == ["anon"]


@pytest.mark.parametrize("name", ["", "a", "../x", "a/b", ".hidden", "-x", "x" * 256, "a b"])
def test_names_docker_refuses(tmp_path: Path, name: str) -> None:
    store = VolumeStore(tmp_path)
    with pytest.raises(InvalidArgument):
        store.create(name)
    with pytest.raises(NotFound):
        store.get(name)
    assert list(tmp_path.iterdir()) == []


def test_reap_clears_half_made_and_half_removed_volumes(tmp_path: Path) -> None:
    store = VolumeStore(tmp_path)
    store.create("kept")
    (tmp_path / ".new-0001" / "_data").mkdir(parents=True)
    (tmp_path / ".gone-0002" / "_data").mkdir(parents=True)
    assert [v.name for v in store.list()] == ["kept"]  # never listed
    store.reap()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]


def test_copy_up_stays_inside_the_root(tmp_path: Path) -> None:
    rootfs, data = tmp_path / "rootfs", tmp_path / "data"
    (rootfs / "app").mkdir(parents=True)
    (rootfs / "app" / "f").write_text("image's")
    (rootfs / "escape").symlink_to(str(tmp_path / "secret"))  # absolute: restarts at rootfs
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "host").write_text("host's")
    data.mkdir()
    assert not copy_up(rootfs, "/escape", data)
    assert list(data.iterdir()) == []
    assert copy_up(rootfs, "/app", data)
    assert (data / "f").read_text() == "image's"
    (rootfs / "app" / "g").write_text("later")
    assert not copy_up(rootfs, "/app", data)  # not empty: not filled again
    assert sorted(p.name for p in data.iterdir()) == ["f"]


def test_create_body_volumes() -> None:
    body = parse_create({
        "Image": "busybox", "Volumes": {"/anon": {}, "/named": {}},
        "HostConfig": {"Binds": ["/host:/bind", "named:/named:ro,nocopy"],
                       "Mounts": [{"Type": "volume", "Source": "mv", "Target": "/m"},
                                  {"Type": "volume", "Target": "/a2"}]}})
    assert [b.target for b in body.binds] == ["/bind"]
    assert body.volumes == [VolumeMount("named", "/named", True, True),
                            VolumeMount("mv", "/m"), VolumeMount("", "/a2", anonymous=True),
                            VolumeMount("", "/anon", anonymous=True)]
    image = {"config": {"Volumes": {"/anon": {}, "/img": {}, "/bind/": {}}}}
    assert [v.target for v in with_image_volumes(body, image).volumes][-1] == "/img"


@pytest.mark.parametrize("host", [
    {"Binds": ["bad$:/x"]}, {"Binds": ["vv:relative"]}, {"Binds": ["vv:/x:bogus"]},
    {"Binds": ["vv:/x", "ww:/x"]}, {"Mounts": [{"Type": "volume", "Source": "vv"}]},
    {"Mounts": [{"Type": "volume", "Target": "/x",
                 "VolumeOptions": {"DriverConfig": {"Name": "nfs"}}}]},
])
def test_bad_volume_fields(host: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(BadRequest):
        parse_create({"Image": "busybox", "HostConfig": host})
