"""Prebuilt answers on the wire: per-record messages serialized once, joined per call.

The kubelet lists every pod and container every second (PLEG relist) and asks the status of
every container that changed. Each record (immutable: a state change replaces it) is turned
into its message and serialized once; `WireCache` keeps those bytes beside the record they came
from, and an identity check per item tells whether they are still valid. A list answer is the
join of its items' bytes: a repeated message field is, on the wire, one length-delimited entry
per item, so `frame(1, item) + frame(1, item) ...` is exactly the serialized response whose
field 1 is the repeated items. The servicer returns those bytes and the handler's serializer
(see `runtime_service.add_to_server`) passes bytes through untouched. A response with one
message field 1 (ContainerStatusResponse's status) is `frame(1, message)` alone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import Generic, TypeVar

from google.protobuf.message import Message

R = TypeVar("R")


def varint(n: int) -> bytes:
    """The protobuf base-128 varint of a non-negative n (negative int64: two's complement)."""
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def frame(field_number: int, data: bytes) -> bytes:
    """A length-delimited field (wire type 2): tag, length, data."""
    return varint(field_number << 3 | 2) + varint(len(data)) + data


def int_field(field_number: int, value: int) -> bytes:
    """A varint field (wire type 0); proto3 leaves a zero out."""
    return varint(field_number << 3) + varint(value) if value else b""


def passthrough(serialize: Callable[[Message], bytes]) -> Callable[[object], bytes]:
    """A response serializer that hands prebuilt bytes on as they are, messages to `serialize`."""
    def wire(response: object) -> bytes:
        if isinstance(response, bytes):
            return response
        return serialize(response)  # type: ignore[arg-type]
    return wire


class WireCache(Generic[R]):
    """key -> (record, the record's message framed as field `field_number`).

    Thread-safe: concurrent lists may build the same item twice, never a wrong one.
    """

    def __init__(self, build: Callable[[R], Message], field_number: int = 1) -> None:
        self._build = build
        self._field = field_number
        self._items: dict[str, tuple[R, bytes]] = {}
        self._lock = threading.Lock()

    def item(self, key: str, record: R) -> bytes:
        """The framed bytes of `record`'s message, built only when the record changed."""
        hit = self._items.get(key)
        if hit is not None and hit[0] is record:
            return hit[1]
        data = frame(self._field, self._build(record).SerializeToString())
        with self._lock:
            self._items[key] = (record, data)
        return data

    def retain(self, keys: Collection[str]) -> None:
        """Forgets every item whose key is not in `keys` (removed records)."""
        if len(self._items) <= len(keys):
            return
        live = set(keys)
        with self._lock:
            for gone in self._items.keys() - live:
                del self._items[gone]

    def __len__(self) -> int:
        return len(self._items)

