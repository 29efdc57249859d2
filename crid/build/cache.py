"""The build cache: which image a step produced, by a key of its parent and its instruction
(and for COPY/ADD the content copied, for RUN the build arguments it sees).

One JSON file, rewritten atomically. An entry whose image is gone is a miss (the image may
have been removed since); the image store is the truth, the cache only points into it.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

from runtime.linux.atomic import write_atomic

MAX_ENTRIES = 10_000


def step_key(parent: str | None, instruction: str, *extra: str) -> str:
    """The cache key of a step: its parent image, its expanded instruction, and `extra`."""
    h = hashlib.sha256()
    for part in (parent or "scratch", instruction, *extra):
        h.update(part.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


class BuildCache:
    """Step key → image id, persisted in `path`; thread-safe."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        try:
            loaded = json.loads(path.read_bytes())
            self._entries: dict[str, str] = {
                k: v for k, v in loaded.items() if isinstance(k, str) and isinstance(v, str)}
        except (OSError, ValueError, AttributeError):
            self._entries = {}

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._entries.get(key)

    def entries(self) -> dict[str, str]:
        with self._lock:
            return dict(self._entries)

    def drop(self, keys: set[str]) -> None:
        """Forgets the entries `keys` (the others stay)."""
        with self._lock:
            for key in keys:
                self._entries.pop(key, None)
            self._save()

    def put(self, key: str, image_id: str) -> None:
        with self._lock:
            self._entries[key] = image_id
            while len(self._entries) > MAX_ENTRIES:  # oldest first: dicts keep insertion order
                del self._entries[next(iter(self._entries))]
            self._save()

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self._path, json.dumps(self._entries).encode())
