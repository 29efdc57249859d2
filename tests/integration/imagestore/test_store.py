"""Store behaviour: shared layers, concurrent pulls, crash leftovers, GC, pins, overlay use."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagestore import ImageInUse, ImageNotFound, ImageStore, ImageStoreError
from tests.integration.imagestore.conftest import StoreFactory, snapshot
from tests.integration.imagestore.fake_registry import FakeRegistry
from tests.rig import catalog
from tests.rig.images import BuiltImage
from tests.rig.tree import scan_tree, tree_diff

A = catalog.big_image(total_bytes=8 << 20, layer_count=4, seed=7, variant=0)
B = catalog.big_image(total_bytes=8 << 20, layer_count=4, seed=7, variant=1)


@pytest.fixture
def fake() -> Iterator[FakeRegistry]:
    reg = FakeRegistry()
    reg.add("crt/a", A)
    reg.add("crt/b", B)
    reg.add("crt/ks", catalog.kitchen_sink_image())
    with reg.running():
        yield reg


def _blob_gets(fake: FakeRegistry, image: BuiltImage) -> list[int]:
    return [sum(n for p, n in fake.hits.items() if p.endswith(la.digest)) for la in image.layers]


def test_concurrent_pulls_fetch_each_layer_once(fake: FakeRegistry,
                                                store_factory: StoreFactory) -> None:
    store = store_factory(parallel_downloads=4)
    refs = [f"{fake.netloc}/crt/a:latest", f"{fake.netloc}/crt/b:latest"] * 3
    results: list[object] = []
    threads = [threading.Thread(target=lambda r=r: results.append(store.pull(r))) for r in refs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted({r.id for r in results}) == sorted({A.image_id, B.image_id})  # type: ignore
    assert _blob_gets(fake, A) == [1, 1, 1, 1]
    assert _blob_gets(fake, B)[-1] == 1
    shared = store.layer_dirs(A.image_id)[1:]
    assert shared == store.layer_dirs(B.image_id)[1:]  # top first: all but the top are shared
    assert len(list((store_root(store) / "layers").iterdir())) == 5


def test_second_image_fetches_only_the_new_layer(fake: FakeRegistry,
                                                 store_factory: StoreFactory) -> None:
    store = store_factory()
    store.pull(f"{fake.netloc}/crt/a:latest")
    store.pull(f"{fake.netloc}/crt/b:latest")
    assert _blob_gets(fake, B) == [1, 1, 1, 1] and _blob_gets(fake, A) == [1, 1, 1, 1]


def test_gc_keeps_shared_layers(fake: FakeRegistry, store_factory: StoreFactory) -> None:
    store = store_factory()
    a = store.pull(f"{fake.netloc}/crt/a:latest")
    b = store.pull(f"{fake.netloc}/crt/b:latest")
    a_top = store.layer_dirs(a.id)[0]
    store.remove(a.id)
    assert not a_top.exists()
    assert all(d.is_dir() for d in store.layer_dirs(b.id))
    store.remove(b.id)
    root = store_root(store)
    assert (list((root / "layers").iterdir()), list((root / "blobs" / "sha256").iterdir())) == (
        [], [])


def test_leftovers_of_an_interrupted_pull_are_removed_at_open(
        fake: FakeRegistry, store_factory: StoreFactory, tmp_path: Path) -> None:
    store = store_factory()
    kept = store.pull(f"{fake.netloc}/crt/a:latest")
    store.close()
    root = tmp_path / "images"
    (root / "tmp" / "layer-half-done" / "diff").mkdir(parents=True)
    orphan = root / "layers" / ("f" * 64)
    (orphan / "diff").mkdir(parents=True)  # no layer.json: never completed
    complete_unused = root / "layers" / ("e" * 64)
    (complete_unused / "diff").mkdir(parents=True)
    (complete_unused / "layer.json").write_text(
        '{"chain_id": "sha256:' + "e" * 64 + '", "diff_id": "x", "size": 0, "inodes": 0}')
    (root / "blobs" / "sha256" / ("d" * 64)).write_bytes(b"stray")
    again = store_factory()
    assert [r.id for r in again.list()] == [kept.id]
    assert sorted(os.listdir(root / "tmp")) == []
    assert not orphan.exists() and not complete_unused.exists()
    assert not (root / "blobs" / "sha256" / ("d" * 64)).exists()
    assert [tree_diff(want, scan_tree(d)) for want, d in zip(
        reversed(A.expected_layer_trees()), again.layer_dirs(kept.id), strict=True)] == [[]] * 4


def test_pins_and_in_use(fake: FakeRegistry, store_factory: StoreFactory,
                         tmp_path: Path) -> None:
    used: set[str] = set()
    store = store_factory(in_use=lambda: used, pinned=(f"{fake.netloc}/crt/a",))
    a = store.pull(f"{fake.netloc}/crt/a:latest")
    b = store.pull(f"{fake.netloc}/crt/b:latest")
    assert (a.pinned, b.pinned) == (True, False)
    used.add(b.id)
    with pytest.raises(ImageInUse):
        store.remove(f"{fake.netloc}/crt/b:latest")
    used.clear()
    store.remove(f"{fake.netloc}/crt/b:latest")
    assert [r.id for r in store.list()] == [a.id]


def test_fs_usage(fake: FakeRegistry, store_factory: StoreFactory) -> None:
    store = store_factory()
    empty = store.fs_usage()
    record = store.pull(f"{fake.netloc}/crt/a:latest")
    usage = store.fs_usage()
    assert usage.used_bytes - empty.used_bytes >= record.size >= 8 << 20
    assert usage.inodes_used > empty.inodes_used
    assert usage.mountpoint.is_dir()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting overlayfs needs root")
def test_layer_dirs_mount_as_overlay_lowerdir(fake: FakeRegistry, store_factory: StoreFactory,
                                              tmp_path: Path) -> None:
    image = catalog.kitchen_sink_image()
    store = store_factory()
    record = store.pull(f"{fake.netloc}/crt/ks:latest")
    target = tmp_path / "crt-img-merged"
    target.mkdir()
    lower = ":".join(str(d) for d in store.layer_dirs(record.id))
    subprocess.run(["mount", "-t", "overlay", "crt-img-overlay", "-o", f"lowerdir={lower}",
                    str(target)], check=True)
    try:
        assert tree_diff(image.expected_tree(), scan_tree(target)) == []
    finally:
        subprocess.run(["umount", str(target)], check=True)


def store_root(store: ImageStore) -> Path:
    return store.root


def test_a_failing_layer_stops_the_others_early(fake: FakeRegistry, store_factory: StoreFactory,
                                                tmp_path: Path) -> None:
    def slow(h, body: bytes) -> None:  # ~2 MiB at 16 KiB per 50 ms: > 6 s if read to the end
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            for i in range(0, len(body), 16 << 10):
                h.wfile.write(body[i:i + (16 << 10)])
                time.sleep(0.05)
        except OSError:
            pass  # the client hung up: what this test wants
    for layer in A.layers[1:]:
        fake.faults[f"/v2/crt/a/blobs/{layer.digest}"] = slow
    fake.faults[f"/v2/crt/a/blobs/{A.layers[0].digest}"] = lambda h, _: h.reply(404)
    store = store_factory(parallel_downloads=4)
    start = time.monotonic()
    with pytest.raises(ImageNotFound):
        store.pull(f"{fake.netloc}/crt/a:latest")
    assert time.monotonic() - start < 3
    assert (os.listdir(tmp_path / "images" / "layers"), os.listdir(tmp_path / "images" / "tmp"),
            store.list()) == ([], [], [])


def test_a_new_image_takes_the_tag_and_the_old_one_keeps_its_digest(
        fake: FakeRegistry, store_factory: StoreFactory) -> None:
    store = store_factory()
    fake.add("crt/moving", A, "v1")
    old = store.pull(f"{fake.netloc}/crt/moving:v1")
    fake.add("crt/moving", B, "v1")
    new = store.pull(f"{fake.netloc}/crt/moving:v1")
    old_now = store.status(old.id)
    assert old_now is not None
    assert (old_now.repo_tags, old_now.repo_digests) == ((), old.repo_digests)
    assert new.repo_tags == (f"{fake.netloc}/crt/moving:v1",)
    assert store.status(f"{fake.netloc}/crt/moving:v1") == new


def test_killed_pull_leaves_nothing_visible(fake: FakeRegistry, store_factory: StoreFactory,
                                            tmp_path: Path) -> None:
    """SIGKILL a pulling process mid-layer; the next open shows the store as it was."""
    def slow(h, body: bytes) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        try:
            for i in range(0, len(body), 64 << 10):
                h.wfile.write(body[i:i + (64 << 10)])
                time.sleep(0.2)
        except OSError:
            pass
    fake.faults[f"/v2/crt/a/blobs/{A.layers[-1].digest}"] = slow
    store = store_factory()
    kept = store.pull(f"{fake.netloc}/crt/ks:latest")
    store.close()
    before = snapshot(tmp_path / "images")
    root = tmp_path / "images"
    code = ("import sys; from pathlib import Path; from imagestore import *; "
            f"s = ImageStore(ImageStoreOptions(root=Path({str(root)!r}), auth_file=None, "
            f"certs_dir=Path({str(tmp_path)!r}))); s.pull({f'{fake.netloc}/crt/a:latest'!r})")
    here = Path(__file__).resolve().parents[3]
    child = subprocess.Popen([sys.executable, "-c", code], cwd=here,
                             env={**os.environ, "PYTHONPATH": str(here)})
    try:
        deadline = time.monotonic() + 20
        while len(list((root / "layers").iterdir())) < len(kept.chain_ids) + 3:
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.05)  # three of A's four layers published, the slow one in progress
        assert list((root / "tmp").iterdir())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    again = store_factory()
    assert [r.id for r in again.list()] == [kept.id]
    assert snapshot(root) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_full_disk_is_a_named_error_and_leaves_no_partial_layer(
        fake: FakeRegistry, store_factory: StoreFactory, tmp_path: Path) -> None:
    root = tmp_path / "images"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "crt-img-full", str(root)],
                   check=True)
    try:
        store = store_factory()
        with pytest.raises(ImageStoreError, match="No space left") as err:
            store.pull(f"{fake.netloc}/crt/a:latest")
        assert type(err.value) is ImageStoreError
        assert (os.listdir(root / "layers"), os.listdir(root / "tmp"), store.list()) == (
            [], [], [])
        store.close()
    finally:
        subprocess.run(["umount", str(root)], check=True)


def test_one_store_per_root(store_factory: StoreFactory) -> None:
    first = store_factory()
    with pytest.raises(ImageStoreError, match="in use by another process"):
        code = ("from pathlib import Path; from imagestore import *; "
                f"ImageStore(ImageStoreOptions(root=Path({str(first.root)!r}), auth_file=None))")
        here = Path(__file__).resolve().parents[3]
        out = subprocess.run([sys.executable, "-c", code], cwd=here, capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(here)})
        raise ImageStoreError(out.stderr.strip().splitlines()[-1])
    first.close()
    store_factory().close()  # free again once closed


def test_corrupt_records_are_a_named_error_and_release_the_root(
        store_factory: StoreFactory, tmp_path: Path) -> None:
    store_factory().close()
    (tmp_path / "images" / "images.json").write_text("{not json")
    with pytest.raises(ImageStoreError, match="reading image records"):
        store_factory()
    (tmp_path / "images" / "images.json").unlink()
    assert store_factory().list() == []
