"""Image config, manifests and indexes built by the rig."""

from __future__ import annotations

import json

import pytest

from tests.rig import catalog
from tests.rig import layers as L
from tests.rig.images import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    ImageBuildError,
    ImageConfig,
    ImageSpec,
    build_image,
    build_index,
)


def _image(fmt: str = "oci") -> object:
    return build_image(ImageSpec(
        (L.LayerSpec((L.file("a", b"1"),), "gzip"), L.LayerSpec((L.file("b", b"2"),), "none")),
        ImageConfig(entrypoint=("/bin/sh",), cmd=("-c", "true"), env=("A=1",), working_dir="/w",
                    user="1:2", stop_signal="SIGINT", exposed_ports=("80/tcp",),
                    labels={"k": "v"}),
        format=fmt,
    ))


def test_oci_manifest_references_config_and_layers() -> None:
    image = _image()
    manifest = json.loads(image.manifest.data)
    assert manifest["mediaType"] == OCI_MANIFEST == image.manifest.media_type
    assert manifest["config"]["digest"] == image.config.digest
    assert [la["mediaType"] for la in manifest["layers"]] == [
        "application/vnd.oci.image.layer.v1.tar+gzip", "application/vnd.oci.image.layer.v1.tar"]
    assert [la["size"] for la in manifest["layers"]] == [la.size for la in image.layers]


def test_config_has_diff_ids_history_and_runtime_fields() -> None:
    image = _image("docker")
    assert json.loads(image.manifest.data)["mediaType"] == DOCKER_MANIFEST
    config = json.loads(image.config.data)
    assert config["rootfs"] == {"type": "layers", "diff_ids": list(image.diff_ids)}
    assert len([h for h in config["history"] if not h.get("empty_layer")]) == 2
    assert config["config"] == {
        "Env": ["A=1"], "Entrypoint": ["/bin/sh"], "Cmd": ["-c", "true"], "WorkingDir": "/w",
        "User": "1:2", "StopSignal": "SIGINT", "ExposedPorts": {"80/tcp": {}},
        "Labels": {"k": "v"},
    }


@pytest.mark.parametrize(("fmt", "media_type"), [("oci", OCI_INDEX), ("docker", DOCKER_LIST)])
def test_multiarch_index(fmt: str, media_type: str) -> None:
    index = catalog.multiarch_index(fmt)
    body = json.loads(index.manifest.data)
    assert body["mediaType"] == media_type
    assert [m["digest"] for m in body["manifests"]] == [im.digest for im in index.images]
    assert len({im.digest for im in index.images}) == 3


def test_index_refuses_mixed_formats() -> None:
    with pytest.raises(ImageBuildError):
        build_index([_image("oci"), _image("docker")], "oci")  # type: ignore[list-item]


def test_big_image_variants_share_all_but_the_last_layer() -> None:
    a = catalog.big_image(total_bytes=8 * 256 * 1024, seed=1)
    b = catalog.big_image(total_bytes=8 * 256 * 1024, seed=1, variant=1)
    assert a.diff_ids[:7] == b.diff_ids[:7] and a.diff_ids[7] != b.diff_ids[7]
    assert len(a.layers) == 8


def test_kitchen_sink_expected_tree() -> None:
    tree = catalog.kitchen_sink_image().expected_tree()
    assert "gone" not in tree and "data/big" not in tree and "bin/wget" not in tree
    assert "opaque-dir/lower" not in tree and "opaque-dir/upper" in tree
    assert tree["data/cap"].xattrs["security.capability"] == L.file_capability(10)
    assert tree["data/hardlink"].link_group == "data/hardlink"
    assert tree["data/setuid"].mode == 0o4755
    assert tree["etc/motd"].mode == 0o600
