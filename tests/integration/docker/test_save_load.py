"""docker save / load and export / import through Debian's docker CLI and docker-py: round
trips that end in a running container, the archive's layout (Docker's manifest.json and the
OCI layout Docker 25+ writes), an OCI layout with gzip layers, and hostile archives (path
traversal, links out, missing blobs, wrong digests) refused with 400 and nothing stored."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import docker
import pytest

from tests.integration.docker.conftest import DockerRig


def _ids(rig: DockerRig) -> set[str]:
    return set(rig.cli("images", "-aq", "--no-trunc").stdout.split())


def _committed(rig: DockerRig, name: str) -> str:
    rig.cli("run", "--name", "src", "busybox", "sh", "-c", "echo saved > /saved")
    image_id = rig.cli("commit", "-c", 'CMD ["cat", "/saved"]', "src", name).stdout.strip()
    rig.cli("rm", "src")
    return image_id


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isreg()}  # type: ignore[union-attr]


def _tar(members: dict[str, bytes], extra: list[tarfile.TarInfo] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            tar.addfile(info)
    return buf.getvalue()


def test_save_rmi_load_run(docker_rig: DockerRig, tmp_path: Path) -> None:
    docker_rig.cli("pull", "busybox")
    mine = _committed(docker_rig, "mine:1")
    archive = tmp_path / "images.tar"
    docker_rig.cli("save", "-o", str(archive), "busybox", "mine:1")
    members = _members(archive)
    assert {"manifest.json", "index.json", "oci-layout", "repositories"} <= set(members)
    manifest = json.loads(members["manifest.json"])
    tags = sorted(t for entry in manifest for t in entry["RepoTags"])
    assert tags == sorted([f"{docker_rig.registry.netloc}/busybox:latest",
                           f"{docker_rig.registry.netloc}/mine:1"])
    for entry in manifest:  # every blob is named by its digest
        for name in [entry["Config"], *entry["Layers"]]:
            assert name == "blobs/sha256/" + hashlib.sha256(members[name]).hexdigest()
    index = json.loads(members["index.json"])
    assert {m["annotations"]["io.containerd.image.name"] for m in index["manifests"]} == \
        {f"{docker_rig.registry.netloc}/busybox:latest", f"{docker_rig.registry.netloc}/mine:1"}
    docker_rig.cli("rmi", "mine:1", "busybox")
    assert _ids(docker_rig) == set()
    out = docker_rig.cli("load", "-i", str(archive)).stdout
    assert f"Loaded image: {docker_rig.registry.netloc}/mine:1" in out, out
    assert f"Loaded image: {docker_rig.registry.netloc}/busybox:latest" in out, out
    assert json.loads(docker_rig.cli("image", "inspect", "mine:1").stdout)[0]["Id"] == mine
    assert docker_rig.cli("run", "--rm", "mine:1").stdout == "saved\n"
    assert docker_rig.cli("run", "--rm", "busybox", "echo", "ok").stdout == "ok\n"
    # docker-py: save by id (no tags) and load it back from bytes
    client = docker_rig.client()
    try:
        data = b"".join(client.images.get(mine).save(named=False))
        docker_rig.cli("rmi", "mine:1")
        loaded = client.images.load(data)
        assert [i.id for i in loaded] == [mine]
    finally:
        client.close()


def test_load_an_oci_layout_with_gzip_layers(docker_rig: DockerRig, tmp_path: Path) -> None:
    _committed(docker_rig, "oci:1")
    archive = tmp_path / "saved.tar"
    docker_rig.cli("save", "-o", str(archive), "oci:1")
    members = _members(archive)
    entry = json.loads(members["manifest.json"])[0]
    config = members[entry["Config"]]
    blobs: dict[str, bytes] = {}
    layers = []
    for name in entry["Layers"]:
        packed = gzip.compress(members[name], mtime=0)
        digest = hashlib.sha256(packed).hexdigest()
        blobs[f"blobs/sha256/{digest}"] = packed
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       "digest": f"sha256:{digest}", "size": len(packed)})
    config_digest = hashlib.sha256(config).hexdigest()
    blobs[f"blobs/sha256/{config_digest}"] = config
    manifest = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": f"sha256:{config_digest}",
                                      "size": len(config)},
                           "layers": layers}).encode()
    manifest_digest = hashlib.sha256(manifest).hexdigest()
    blobs[f"blobs/sha256/{manifest_digest}"] = manifest
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": f"sha256:{manifest_digest}", "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": "ocilayout:2"}}]}
    layout = tmp_path / "layout.tar"
    layout.write_bytes(_tar({"oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
                             "index.json": json.dumps(index).encode(), **blobs}))
    out = docker_rig.cli("load", "-i", str(layout)).stdout
    assert "Loaded image: ocilayout:2" in out, out
    assert docker_rig.cli("run", "--rm", "ocilayout:2").stdout == "saved\n"


def _hostile(base: dict[str, bytes]) -> dict[str, bytes]:
    """Archives built from a good one, each broken one way."""
    entry = json.loads(base["manifest.json"])[0]
    layer = entry["Layers"][-1]
    cases: dict[str, bytes] = {}
    cases["dotdot"] = _tar({**base, "../escaped": b"x"})
    cases["absolute"] = _tar({**base, "/etc/evil": b"x"})
    link = tarfile.TarInfo(layer)
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    cases["symlink out"] = _tar({k: v for k, v in base.items() if k != layer}, [link])
    up = tarfile.TarInfo(layer)
    up.type, up.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
    cases["relative link out"] = _tar({k: v for k, v in base.items() if k != layer}, [up])
    cases["missing blob"] = _tar({k: v for k, v in base.items() if k != layer})
    config = json.loads(base[entry["Config"]])
    config["config"]["Cmd"] = ["evil"]
    cases["config digest"] = _tar({**base, entry["Config"]: json.dumps(config).encode()})
    cases["layer digest"] = _tar({**base, layer: base[layer] + b"\0" * 1024})
    cases["not an archive"] = b"this is not a tar" * 100
    cases["neither format"] = _tar({"hello": b"x"})
    evil_layer = _tar({"../../outside": b"x"})
    evil_hex = hashlib.sha256(evil_layer).hexdigest()
    config = json.loads(base[entry["Config"]])
    config["rootfs"]["diff_ids"][-1] = f"sha256:{evil_hex}"
    config_bytes = json.dumps(config).encode()
    config_hex = hashlib.sha256(config_bytes).hexdigest()
    manifest = [{"Config": f"blobs/sha256/{config_hex}", "RepoTags": ["evil:1"],
                 "Layers": [*entry["Layers"][:-1], f"blobs/sha256/{evil_hex}"]}]
    cases["traversal inside a layer"] = _tar({
        **{k: v for k, v in base.items() if k != "index.json"},
        "manifest.json": json.dumps(manifest).encode(), f"blobs/sha256/{config_hex}":
        config_bytes, f"blobs/sha256/{evil_hex}": evil_layer})
    return cases


def test_hostile_archives_are_refused_and_nothing_is_stored(docker_rig: DockerRig,
                                                            tmp_path: Path) -> None:
    _committed(docker_rig, "good:1")
    archive = tmp_path / "good.tar"
    docker_rig.cli("save", "-o", str(archive), "good:1")
    docker_rig.cli("rmi", "good:1")
    before = _ids(docker_rig)
    layers = {p.name for p in (docker_rig.daemon.root / "images" / "layers").iterdir()}
    client = docker_rig.client()
    try:
        for case, data in _hostile(_members(archive)).items():
            with pytest.raises(docker.errors.APIError) as e:
                client.images.load(data)
            assert e.value.status_code == 400, (case, e.value)
            assert _ids(docker_rig) == before, case
            now = {p.name for p in (docker_rig.daemon.root / "images" / "layers").iterdir()}
            assert now == layers, case
    finally:
        client.close()
    assert not (tmp_path.parent / "outside").exists() and not Path("/outside").exists()
    assert list((docker_rig.daemon.root / "docker" / "work").iterdir()) == []
    docker_rig.cli("load", "-i", str(archive))  # the daemon still serves, the archive loads
    assert docker_rig.cli("run", "--rm", "good:1").stdout == "saved\n"


def test_export_import_run(docker_rig: DockerRig, tmp_path: Path) -> None:
    docker_rig.cli("run", "--name", "ex", "busybox", "sh", "-c", "echo imported > /greeting")
    fs = tmp_path / "fs.tar"
    docker_rig.cli("export", "-o", str(fs), "ex")
    out = docker_rig.cli("import", "-c", 'CMD ["cat", "/greeting"]', "-c", "ENV A=b",
                         "-m", "from a tar", str(fs), "imported:1").stdout
    assert out.strip().startswith("sha256:")
    assert docker_rig.cli("run", "--rm", "imported:1").stdout == "imported\n"
    assert docker_rig.cli("run", "--rm", "imported:1", "sh", "-c", "echo $A").stdout == "b\n"
    info = json.loads(docker_rig.cli("image", "inspect", "imported:1").stdout)[0]
    assert len(info["RootFS"]["Layers"]) == 1 and info["Comment"] == "from a tar"
    gz = tmp_path / "fs.tar.gz"
    gz.write_bytes(gzip.compress(fs.read_bytes(), compresslevel=1))
    docker_rig.cli("import", str(gz), "imported:gz")
    assert docker_rig.cli("run", "--rm", "imported:gz", "cat", "/greeting").stdout == \
        "imported\n"
    client = docker_rig.client()
    try:
        client.api.import_image_from_data(_tar({"hello": b"hi\n"}), repository="tiny",
                                          tag="1")
        assert client.images.get("tiny:1").attrs["RootFS"]["Layers"]
        before = _ids(docker_rig)
        for bad in (_tar({"../../escape": b"x"}), b"\x1f\x8b" + b"not gzip" * 10):
            with pytest.raises(docker.errors.APIError) as e:
                client.api.import_image_from_data(bad, repository="bad")
            assert e.value.status_code == 400
        with pytest.raises(docker.errors.APIError) as e:
            client.api.import_image_from_url("http://127.0.0.1:1/x.tar", repository="bad")
        assert e.value.status_code == 400
        assert _ids(docker_rig) == before
    finally:
        client.close()
