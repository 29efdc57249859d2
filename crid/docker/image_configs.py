"""Image configs parsed once: `docker ps`, `images` and `inspect` read an image's config for
every row, and an image id is its config's digest, so what it names never changes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from imagestore import ImageStore

KEEP = 512


class ImageConfigs:
    """A bounded, thread-safe cache of ImageStore.config by image id. Callers must not
    change the dicts they get."""

    def __init__(self, keep: int = KEEP) -> None:
        self._keep = keep
        self._configs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, images: ImageStore, image_id: str) -> dict[str, Any]:
        """The config of `image_id` (an id, not a name: names move).

        Raises:
            ImageNotFound: no such image.
        """
        with self._lock:
            hit = self._configs.get(image_id)
            if hit is not None:
                self._configs.move_to_end(image_id)
                return hit
        config = images.config(image_id)
        with self._lock:
            self._configs[image_id] = config
            while len(self._configs) > self._keep:
                self._configs.popitem(last=False)
        return config
