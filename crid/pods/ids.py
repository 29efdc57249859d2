"""Typed pod sandbox identity: 64 lowercase hex characters, validated once."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from crid.errors import InvalidArgument

_ID = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, order=True)
class PodId:
    """A pod sandbox id (64 hex digits, like CRI-O's and containerd's)."""

    value: str

    def __post_init__(self) -> None:
        if not _ID.match(self.value):
            raise InvalidArgument(f"pod sandbox id {self.value[:80]!r}: not 64 hex digits")

    @classmethod
    def new(cls) -> PodId:
        return cls(secrets.token_hex(32))

    @property
    def short(self) -> str:
        return self.value[:12]

    def __str__(self) -> str:
        return self.value
