"""Expected trees: whiteouts, opaque directories, replacement and hard links."""

from __future__ import annotations

from tests.rig import layers as L
from tests.rig.tree import WHITEOUT, merged_tree, overlay_layer_tree, scan_tree, tree_diff


def _layer(*entries: L.Entry) -> L.BuiltLayer:
    return L.build_layer(L.LayerSpec(entries, "none"))


def test_merged_tree_applies_whiteouts_and_opaque() -> None:
    lower = _layer(L.file("keep", b"k"), L.file("gone/a", b"a"), L.file("opq/lower", b"l"),
                   L.file("replaced", b"old"), L.file("dir-to-file/x", b"x"))
    upper = _layer(L.whiteout("gone"), L.opaque("opq"), L.file("opq/upper", b"u"),
                   L.file("replaced", b"new", 0o600), L.file("dir-to-file", b"now a file"))
    tree = merged_tree([lower, upper])
    assert sorted(tree) == ["dir-to-file", "keep", "opq", "opq/upper", "replaced"]
    assert tree["replaced"].mode == 0o600 and tree["replaced"].size == 3


def test_overlay_layer_tree_marks_whiteouts_and_opaque() -> None:
    upper = _layer(L.whiteout("gone"), L.opaque("opq"), L.file("opq/upper", b"u"))
    tree = overlay_layer_tree(upper)
    assert tree["gone"].kind == WHITEOUT and tree["gone"].rdev == (0, 0)
    assert tree["opq"].opaque is True
    assert ".wh..wh..opq" not in " ".join(tree)


def test_hard_links_share_a_group() -> None:
    tree = merged_tree([_layer(L.file("a", b"1"), L.hardlink("b", "a"))])
    assert tree["a"].link_group == tree["b"].link_group == "a"
    assert tree["a"].sha256 == tree["b"].sha256


def test_scan_matches_a_tree_written_by_hand(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "f").write_bytes(b"1")
    (tmp_path / "f").chmod(0o644)
    (tmp_path / "g").hardlink_to(tmp_path / "f")
    (tmp_path / "s").symlink_to("f")
    uid, gid = (tmp_path / "f").stat().st_uid, (tmp_path / "f").stat().st_gid
    expected = merged_tree([L.build_layer(L.LayerSpec((
        L.file("f", b"1", 0o644, uid, gid), L.hardlink("g", "f"),
        L.symlink("s", "f", uid, gid),
    ), "none"))])
    assert tree_diff(expected, scan_tree(tmp_path)) == []
    (tmp_path / "f").chmod(0o600)
    assert tree_diff(expected, scan_tree(tmp_path)) == [
        "f: mode expected 420, got 384", "g: mode expected 420, got 384"]
