"""The image store as both front doors see it: every pull, whether the kubelet's PullImage, a
`docker pull`, a `docker run` of a missing image or a build's FROM, is one `image.pull` span
and one observation of its duration, outcome and bytes. Observing the store instead of an RPC
is what makes the Docker door's pulls count the same as the CRI's."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from typing import Any

from imagestore import (
    VERIFIED,
    Credentials,
    ImageRecord,
    ImageStore,
    ImageStoreOptions,
    LayerProgress,
)

Span = Callable[..., AbstractContextManager[Any]]
# (seconds, outcome code, layer bytes fetched): the code is "OK" or the status code name the
# error maps to ("UNAVAILABLE"), the same names the CRI door's RPC metrics use.
PullFinished = Callable[[float, str, int], None]


class ObservedImageStore(ImageStore):
    def __init__(self, options: ImageStoreOptions, in_use: Callable[[], Collection[str]], *,
                 span: Span, finished: PullFinished,
                 code_of: Callable[[BaseException], str]) -> None:
        super().__init__(options, in_use=in_use)
        self._span, self._finished, self._code_of = span, finished, code_of

    def pull(self, ref: str, credentials: Credentials | None = None,
             progress: Callable[[LayerProgress], None] | None = None) -> ImageRecord:
        fetched = [0]

        def count(p: LayerProgress) -> None:
            if p.phase == VERIFIED:  # once per downloaded layer, with its byte count
                fetched[0] += p.current
            if progress is not None:
                progress(p)

        start = time.monotonic()
        with self._span("image.pull", image=ref):
            try:
                record = super().pull(ref, credentials, count)
            except BaseException as e:
                self._finished(time.monotonic() - start, self._code_of(e), fetched[0])
                raise
        self._finished(time.monotonic() - start, "OK", fetched[0])
        return record
