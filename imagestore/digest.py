"""Content digests (`sha256:<64 hex>`), validated once and hashed incrementally."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from imagestore.errors import InvalidImage

_ALGORITHMS = {"sha256": 64, "sha512": 128}
_DIGEST = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-f0-9]+)$")


@dataclass(frozen=True, order=True)
class Digest:
    """A validated content digest; `str(d)` is `algorithm:hex`."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse `sha256:<hex>`. Raises InvalidImage for anything else."""
        m = _DIGEST.match(text) if isinstance(text, str) else None
        if not m or _ALGORITHMS.get(m.group(1)) != len(m.group(2)):
            raise InvalidImage(f"invalid digest {text!r:.100}")
        return cls(m.group(1), m.group(2))

    @classmethod
    def of(cls, data: bytes) -> Digest:
        """The sha256 digest of `data`."""
        return cls("sha256", hashlib.sha256(data).hexdigest())

    def hasher(self) -> hashlib._Hash:
        """A fresh hash object of this digest's algorithm."""
        return hashlib.new(self.algorithm)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def chain_ids(diff_ids: list[Digest]) -> list[Digest]:
    """OCI chain IDs of a layer stack, bottom first (image-spec config.md#layer-chainid)."""
    out: list[Digest] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append(Digest.of(f"{out[-1]} {diff_id}".encode()))
    return out
