"""Unpacked layers: one directory per chain ID, `layers/<hex>/diff`, shared by all images.

A layer is unpacked under `tmp/`, described by `layer.json`, then renamed into `layers/` in one
step: a layer directory exists complete or not at all. Concurrent requests for the same chain
ID share one download (a future per key). Removal renames into `tmp/` first, so a crash midway
leaves only leftovers that `clean_tmp` removes on the next open.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path

from imagestore.digest import Digest
from imagestore.errors import ImageStoreError
from imagestore.unpack import LayerStats


@dataclass(frozen=True)
class LayerInfo:
    """A published layer: its chain ID, diff_id, bytes of regular files and inodes."""

    chain_id: str
    diff_id: str
    size: int
    inodes: int


Unpacker = Callable[[Path], LayerStats]


class LayerStore:
    """Thread-safe layer directories with per-chain-ID download de-duplication."""

    def __init__(self, root: Path, tmp: Path) -> None:
        self._root = root
        self._tmp = tmp
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._inflight: dict[str, Future[LayerInfo]] = {}
        self._layers = {info.chain_id: info for info in self._scan()}

    def diff_dir(self, chain_id: str) -> Path:
        """The directory an overlay mount uses as a lower layer."""
        return self._root / Digest.parse(chain_id).hex / "diff"

    def get(self, chain_id: str) -> LayerInfo | None:
        with self._lock:
            return self._layers.get(chain_id)

    def all(self) -> list[LayerInfo]:
        with self._lock:
            return list(self._layers.values())

    def ensure(self, chain_id: str, unpack: Unpacker) -> LayerInfo:
        """The layer `chain_id`, unpacking it with `unpack(empty_dir)` unless present.

        If another thread is unpacking the same layer, wait for it; if that attempt fails,
        try once with our own `unpack` (it may use another repository or credentials).
        """
        for attempt in (0, 1):
            with self._lock:
                if chain_id in self._layers:
                    return self._layers[chain_id]
                fut = self._inflight.get(chain_id)
                mine = fut is None
                if fut is None:
                    fut = self._inflight[chain_id] = Future()
            if mine:
                return self._run(chain_id, unpack, fut)
            try:
                return fut.result()
            except ImageStoreError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def unpublish(self, chain_id: str) -> Path | None:
        """Take a layer out of the store (one rename); returns the directory to delete.

        Callers make sure nothing references it, and delete the result outside their locks.
        """
        with self._lock:
            if self._layers.pop(chain_id, None) is None:
                return None
        hex_ = Digest.parse(chain_id).hex
        doomed = self._tmp / f"rm-{hex_}-{os.urandom(4).hex()}"
        os.rename(self._root / hex_, doomed)
        return doomed

    def _run(self, chain_id: str, unpack: Unpacker, fut: Future[LayerInfo]) -> LayerInfo:
        try:
            info = self._unpack_and_publish(chain_id, unpack)
        except BaseException as e:
            with self._lock:
                del self._inflight[chain_id]
            fut.set_exception(e)
            raise
        with self._lock:
            self._layers[chain_id] = info
            del self._inflight[chain_id]
        fut.set_result(info)
        return info

    def _unpack_and_publish(self, chain_id: str, unpack: Unpacker) -> LayerInfo:
        hex_ = Digest.parse(chain_id).hex
        work = self._tmp / f"layer-{hex_[:12]}-{os.urandom(6).hex()}"
        (work / "diff").mkdir(parents=True)
        try:
            stats = unpack(work / "diff")
            info = LayerInfo(chain_id, str(stats.diff_id), stats.size, stats.inodes)
            # No fsync here: a layer only matters once an image record (written atomically and
            # fsynced) names it, and an fsync per layer would flush every layer's data on
            # ext4 (data=ordered), serialising the parallel unpacks.
            (work / "layer.json").write_text(json.dumps(asdict(info)))
            os.rename(work, self._root / hex_)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return info

    def _scan(self) -> list[LayerInfo]:
        out = []
        for entry in self._root.iterdir():
            try:
                out.append(LayerInfo(**json.loads((entry / "layer.json").read_bytes())))
            except (OSError, ValueError, TypeError):
                shutil.rmtree(entry, ignore_errors=True)  # not a complete layer: a leftover
        return out
