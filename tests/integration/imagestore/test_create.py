"""Layers packed from directories (overlay upper dirs, plain trees) and images made from them:
the inverse of unpacking, byte-exact, deterministic, safe on trees a container wrote."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import stat
import tarfile
from pathlib import Path

import pytest

from imagestore import InvalidImage, InvalidReference, NewImage, VerificationFailed
from imagestore.decompress import BombLimits
from imagestore.digest import Digest
from imagestore.pack import pack_layer
from imagestore.unpack import unpack_layer
from tests.integration.imagestore.conftest import StoreFactory, snapshot
from tests.rig.distribution import DistributionClient
from tests.rig.images import BuiltImage
from tests.rig.registry import Registry
from tests.rig.tree import scan_tree, tree_diff

LIMITS = BombLimits(1 << 30, 200, 1 << 29)
CONFIG = {"os": "linux", "architecture": "amd64", "config": {"Cmd": ["/bin/sh"]},
          "history": [{"created_by": "test"}]}


def _upper(root: Path) -> Path:
    """An overlay-style upper dir with every kind of entry, whiteouts and an opaque dir."""
    (root / "etc").mkdir(parents=True)
    (root / "etc/motd").write_text("hello\n")
    os.chown(root / "etc/motd", 1000, 1001)
    os.chmod(root / "etc/motd", 0o4755)  # after chown, which clears setuid
    os.utime(root / "etc/motd", ns=(1, 1_700_000_000_123_456_789))
    os.setxattr(root / "etc/motd", "user.note", b"kept")
    os.setxattr(root / "etc/motd", "trusted.overlay.origin", b"dropped")
    os.link(root / "etc/motd", root / "etc/motd.link")
    os.symlink("/etc/shadow", root / "etc/abs-link")  # recorded, never followed
    os.symlink("../nowhere", root / "dangling")
    os.mkfifo(root / "fifo")
    os.mknod(root / "tty", 0o620 | stat.S_IFCHR, os.makedev(5, 0))
    os.mknod(root / "gone", 0o600 | stat.S_IFCHR, 0)  # overlay whiteout
    (root / "var/cache").mkdir(parents=True)
    os.setxattr(root / "var/cache", "trusted.overlay.opaque", b"y")
    (root / "var/cache/new").write_bytes(os.urandom(3000))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "var/sock"))
    sock.close()
    return root


def _pack(root: Path, out: Path) -> Digest:
    with open(out, "wb") as f:
        return pack_layer(root, f).diff_id


def _unpack(tar: Path, dest: Path, diff_id: Digest) -> None:
    dest.mkdir()
    with open(tar, "rb") as f:
        unpack_layer(iter(lambda: f.read(1 << 16), b""), "none", dest, diff_id, LIMITS)


def test_pack_writes_changesets_as_the_image_spec_says(tmp_path: Path) -> None:
    upper = _upper(tmp_path / "upper")
    diff_id = _pack(upper, tmp_path / "layer.tar")
    with tarfile.open(tmp_path / "layer.tar") as tar:
        members = {m.name: m for m in tar}
    assert sorted(members) == sorted([
        "dangling", "etc", "etc/abs-link", "etc/motd", "etc/motd.link", "fifo", ".wh.gone",
        "tty", "var", "var/cache", "var/cache/.wh..wh..opq", "var/cache/new"])
    motd = members["etc/motd"]
    assert (motd.mode, motd.uid, motd.gid) == (0o4755, 1000, 1001)
    assert motd.pax_headers["mtime"] == "1700000000.123456789"
    assert motd.pax_headers["SCHILY.xattr.user.note"] == "kept"
    assert not any("overlay" in k for m in members.values() for k in m.pax_headers)
    assert members["etc/motd.link"].islnk() and members["etc/motd.link"].linkname == "etc/motd"
    assert members["etc/abs-link"].linkname == "/etc/shadow"
    assert (members["tty"].devmajor, members["tty"].devminor) == (5, 0)
    assert diff_id == Digest.of((tmp_path / "layer.tar").read_bytes())


def test_pack_then_unpack_is_the_same_tree_and_packs_again_to_the_same_bytes(
        tmp_path: Path) -> None:
    upper = _upper(tmp_path / "upper")
    os.unlink(upper / "var/sock")  # sockets are left out: compare without it
    first = _pack(upper, tmp_path / "1.tar")
    _unpack(tmp_path / "1.tar", tmp_path / "unpacked", first)
    assert tree_diff(scan_tree(upper), scan_tree(tmp_path / "unpacked"), check_mtime=True,
                     ignore_xattrs=("trusted.overlay.origin",)) == []
    assert _pack(tmp_path / "unpacked", tmp_path / "2.tar") == first
    assert _pack(upper, tmp_path / "3.tar") == first  # deterministic


def test_pack_reads_no_file_through_a_symlinked_directory(tmp_path: Path) -> None:
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "key").write_text("secret")
    upper = tmp_path / "upper"
    upper.mkdir()
    os.symlink(secret, upper / "escape")
    _pack(upper, tmp_path / "layer.tar")
    with tarfile.open(tmp_path / "layer.tar") as tar:
        assert [(m.name, m.issym()) for m in tar] == [("escape", True)]


def _busybox(registry: Registry, pushed, store_factory: StoreFactory, image: BuiltImage):
    pushed(registry, "crt/base", image, "v1")
    store = store_factory()
    return store, store.pull(registry.ref("crt/base", "v1"))


def test_an_image_made_on_a_pulled_one_round_trips_through_a_registry(
        registry: Registry, pushed, store_factory: StoreFactory, busybox_image: BuiltImage,
        tmp_path: Path) -> None:
    store, base = _busybox(registry, pushed, store_factory, busybox_image)
    upper = tmp_path / "upper"
    (upper / "app").mkdir(parents=True)
    (upper / "app/run.sh").write_text("#!/bin/sh\necho made\n")
    tar = tmp_path / "change.tar"
    diff_id = _pack(upper, tar)
    tag = registry.ref("crt/made", "v1")

    made = store.create(NewImage(base.id, (tar,), CONFIG, (tag,)))

    config = store.config(made.id)
    base_ids = store.config(base.id)["rootfs"]["diff_ids"]
    assert config["rootfs"]["diff_ids"] == [*base_ids, str(diff_id)]
    assert (made.repo_tags, made.chain_ids[:-1]) == ((tag,), base.chain_ids)
    top = store.layer_dirs(made.id)[0]
    assert (top / "app/run.sh").read_text() == "#!/bin/sh\necho made\n"
    assert store.create(NewImage(base.id, (tar,), CONFIG, ())).id == made.id  # same content

    store.push(tag)
    client = DistributionClient(registry)
    assert client.get_manifest("crt/made", "v1").media_type.startswith(
        "application/vnd.oci.image.manifest")
    again = store_factory(root=tmp_path / "again").pull(tag)
    assert again.id == made.id


def test_an_image_from_scratch_and_a_hostile_tar(store_factory: StoreFactory,
                                                 tmp_path: Path) -> None:
    store = store_factory()
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin/hello").write_text("hi")
    tar = tmp_path / "rootfs.tar"
    _pack(rootfs, tar)
    made = store.create(NewImage(None, (tar,), CONFIG, ("localhost/imported:v1",)))
    assert [p.name for p in store.layer_dirs(made.id)] == ["diff"]
    assert store.status("localhost/imported:v1").id == made.id

    hostile = tmp_path / "hostile.tar"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("../../escaped")
        info.size = 2
        t.addfile(info, io.BytesIO(b"no"))
    hostile.write_bytes(buf.getvalue())
    before = snapshot(store.root)
    with pytest.raises(InvalidImage, match=r"\.\."):
        store.create(NewImage(made.id, (hostile,), CONFIG, ("localhost/bad:v1",)))
    assert snapshot(store.root) == before
    assert not (tmp_path.parent / "escaped").exists()
    with pytest.raises(InvalidImage, match="architecture"):
        store.create(NewImage(None, (tar,), {"os": "linux"}, ()))


def test_tag_moves_and_untag_keeps_the_image(registry: Registry, pushed,
                                             store_factory: StoreFactory,
                                             busybox_image: BuiltImage, tmp_path: Path) -> None:
    store, base = _busybox(registry, pushed, store_factory, busybox_image)
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "x").write_text("x")
    tar = tmp_path / "x.tar"
    _pack(rootfs, tar)
    other = store.create(NewImage(None, (tar,), CONFIG, ()))

    tagged = store.tag(base.id, "localhost/mine")
    assert tagged.repo_tags == (registry.ref("crt/base", "v1"), "localhost/mine:latest")
    moved = store.tag(other.id, "localhost/mine:latest")
    assert moved.repo_tags == ("localhost/mine:latest",)
    assert store.status(base.id).repo_tags == (registry.ref("crt/base", "v1"),)

    assert store.untag("localhost/mine").id == other.id
    assert store.status(other.id).repo_tags == ()  # still there, untagged
    assert store.untag("localhost/mine") is None
    with pytest.raises(InvalidReference):
        store.tag(base.id, f"localhost/mine@{busybox_image.digest}")


def test_a_loaded_config_keeps_its_bytes_and_must_name_its_layers(
        store_factory: StoreFactory, tmp_path: Path) -> None:
    store = store_factory()
    rootfs = tmp_path / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin/hello").write_text("hi")
    tar = tmp_path / "rootfs.tar"
    diff_id = _pack(rootfs, tar)
    doc = {**CONFIG, "rootfs": {"type": "layers", "diff_ids": [str(diff_id)]}}
    raw = json.dumps(doc, indent=3).encode()  # not canonical: the bytes are kept as they are
    made = store.create(NewImage(None, (tar,), doc, raw_config=raw))
    assert made.id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert store.config_bytes(made.id) == raw
    saved = store.save_layers(made.id, tmp_path)
    assert [(s.diff_id, s.exact) for s in saved] == [(diff_id, True)]
    assert saved[0].path.read_bytes() == tar.read_bytes()
    lying = {**CONFIG, "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}}
    before = snapshot(store.root)
    with pytest.raises(VerificationFailed):
        store.create(NewImage(None, (tar,), lying, raw_config=json.dumps(lying).encode()))
    assert snapshot(store.root) == before


def test_an_incompressible_layer_is_kept_as_a_plain_tar_and_pushes(
        registry: Registry, pushed, store_factory: StoreFactory, busybox_image: BuiltImage,
        tmp_path: Path) -> None:
    store, base = _busybox(registry, pushed, store_factory, busybox_image)
    upper = tmp_path / "upper"
    upper.mkdir()
    (upper / "random").write_bytes(os.urandom(6 << 20))
    (upper / "text").write_text("compressible " * 1000)
    tar = tmp_path / "change.tar"
    diff_id = _pack(upper, tar)
    tag = registry.ref("crt/random", "v1")
    made = store.create(NewImage(base.id, (tar,), CONFIG, (tag,)))
    manifest = json.loads((store.root / "blobs" / "sha256" /
                           made.manifest_digest.split(":")[1]).read_bytes())
    top = manifest["layers"][-1]
    assert top["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
    assert top["digest"] == str(diff_id) and top["size"] == tar.stat().st_size
    assert manifest["layers"][0]["mediaType"].endswith("gzip")  # the base's, as pulled
    saved = store.save_layers(made.id, tmp_path)
    assert saved[-1].exact and saved[-1].path.read_bytes() == tar.read_bytes()
    tar.unlink()  # the blob is the store's own (a link), not the caller's file
    store.push(tag)
    again = store_factory(root=tmp_path / "again").pull(tag)
    assert again.id == made.id
    assert (again.size, len(again.chain_ids)) == (made.size, len(made.chain_ids))
