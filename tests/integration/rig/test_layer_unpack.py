"""The builder's expected trees agree with what GNU tar unpacks from its layers (as root)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import zstandard

from tests.rig import catalog
from tests.rig.tree import WHITEOUT, scan_tree, tree_diff


def test_kitchen_sink_rich_layer_unpacks_as_described(tmp_path: Path) -> None:
    image = catalog.kitchen_sink_image()
    layer = image.layers[1]  # zstd: every entry kind, no whiteouts
    raw = zstandard.ZstdDecompressor().decompress(layer.data)
    subprocess.run(
        ["tar", "--xattrs", "--xattrs-include=*", "--same-owner", "-xpf", "-",
         "-C", str(tmp_path)], input=raw, check=True,
    )
    expected = image.expected_layer_trees()[1]
    assert [n for n in expected.values() if n.kind == WHITEOUT] == []
    assert tree_diff(expected, scan_tree(tmp_path), check_mtime=True) == []
