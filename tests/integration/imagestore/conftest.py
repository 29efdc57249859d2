"""Fixtures: an image store in a temporary root, wired to the rig's registries."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from imagestore import ImageStore, ImageStoreOptions
from tests.rig.distribution import DistributionClient
from tests.rig.images import BuiltImage, BuiltIndex, push
from tests.rig.registry import Registry

StoreFactory = Callable[..., ImageStore]


@pytest.fixture
def store_factory(tmp_path: Path) -> Iterator[StoreFactory]:
    """`store_factory(**option_overrides)` → an ImageStore rooted in this test's tmp dir.

    Fast retries by default; certs_dir and auth_file point inside tmp_path."""
    stores: list[ImageStore] = []
    certs = tmp_path / "certs.d"
    certs.mkdir()

    def make(in_use: Callable[[], set[str]] | None = None, **overrides: object) -> ImageStore:
        base = ImageStoreOptions(root=tmp_path / "images", certs_dir=certs, auth_file=None,
                                 retries=2, backoff_seconds=0.01, connect_timeout=2,
                                 read_timeout=5)
        store = ImageStore(dataclasses.replace(base, **overrides),  # type: ignore[arg-type]
                           in_use=in_use)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def pushed() -> Callable[[Registry, str, BuiltImage | BuiltIndex, str | None], str]:
    """`pushed(registry, repo, image, tag)` pushes with the registry's own credentials."""
    def do(reg: Registry, repo: str, image: BuiltImage | BuiltIndex, tag: str | None = "latest"
           ) -> str:
        return push(DistributionClient(reg), repo, image, tag)
    return do


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under `root` with (mode, size): to prove a failed pull changed nothing."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_size)
    return out
