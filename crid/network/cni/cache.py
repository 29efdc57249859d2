"""The CNI result cache: what each ADD was given and returned, so DEL and CHECK work after a
restart with the exact configuration and prevResult the ADD used (as libcni's
``/var/lib/cni/results`` does)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass
from typing import Any

from crid.network.fsutil import read_json, write_json_atomic


@dataclass
class CacheEntry:
    pod_id: str
    network: str
    cni_version: str
    plugins: list[dict[str, Any]]
    ifname: str
    netns: str
    cni_args: str
    runtime_config: dict[str, Any]
    result: dict[str, Any] | None = None  # None while ADD is in flight or failed


class ResultCache:
    def __init__(self, cache_dir: str) -> None:
        self.dir = cache_dir
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)

    def _path(self, pod_id: str) -> str:
        return os.path.join(self.dir, pod_id + ".json")

    def put(self, entry: CacheEntry) -> None:
        write_json_atomic(self._path(entry.pod_id), asdict(entry))

    def get(self, pod_id: str) -> CacheEntry | None:
        try:
            d = read_json(self._path(pod_id))
            return CacheEntry(**d) if d else None
        except (ValueError, TypeError):
            return None  # a corrupt entry: DEL falls back to the current config

    def remove(self, pod_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(pod_id))

    def pod_ids(self) -> list[str]:
        return sorted(n[:-5] for n in os.listdir(self.dir) if n.endswith(".json"))
