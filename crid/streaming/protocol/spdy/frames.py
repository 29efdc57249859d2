"""SPDY/3.1 frames, declared once as data and encoded/decoded from the declaration.

Every frame starts with 8 bytes (draft 3.1, section 2.2):

    control: |1| version(15) | type(16) | flags(8) | length(24) | payload
    data:    |0| stream-id(31)          | flags(8) | length(24) | payload

The fixed part of each control payload is a list of bit fields (name, width); "_" marks reserved
bits, sent as 0 and ignored. What follows the fixed part is the frame's tail: a compressed header
block (SYN_STREAM, SYN_REPLY, HEADERS) or the SETTINGS entries.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from crid.streaming.protocol.errors import ProtocolError

VERSION = 3
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
SETTINGS_INITIAL_WINDOW_SIZE = 7
DEFAULT_WINDOW = 65536
MAX_LENGTH = (1 << 24) - 1


class FrameType(enum.IntEnum):
    SYN_STREAM = 1
    SYN_REPLY = 2
    RST_STREAM = 3
    SETTINGS = 4
    PING = 6
    GOAWAY = 7
    HEADERS = 8
    WINDOW_UPDATE = 9


class RstStatus(enum.IntEnum):
    PROTOCOL_ERROR = 1
    INVALID_STREAM = 2
    REFUSED_STREAM = 3
    UNSUPPORTED_VERSION = 4
    CANCEL = 5
    INTERNAL_ERROR = 6
    FLOW_CONTROL_ERROR = 7
    STREAM_IN_USE = 8
    STREAM_ALREADY_CLOSED = 9
    FRAME_TOO_LARGE = 11


class GoAwayStatus(enum.IntEnum):
    OK = 0
    PROTOCOL_ERROR = 1
    INTERNAL_ERROR = 2


_SID = (("_", 1), ("stream_id", 31))
# type -> (fixed bit fields, tail kind)
LAYOUTS: dict[FrameType, tuple[tuple[tuple[str, int], ...], str | None]] = {
    FrameType.SYN_STREAM: (_SID + (("_", 1), ("associated_id", 31), ("priority", 3),
                                   ("_", 5), ("slot", 8)), "headers"),
    FrameType.SYN_REPLY: (_SID, "headers"),
    FrameType.RST_STREAM: (_SID + (("status", 32),), None),
    FrameType.SETTINGS: ((("count", 32),), "settings"),
    FrameType.PING: ((("ping_id", 32),), None),
    FrameType.GOAWAY: ((("_", 1), ("last_good_stream_id", 31), ("status", 32)), None),
    FrameType.HEADERS: (_SID, "headers"),
    FrameType.WINDOW_UPDATE: (_SID + (("_", 1), ("delta", 31)), None),
}
SETTING_ENTRY = (("flags", 8), ("id", 24), ("value", 32))

_CONTROL_HEAD = struct.Struct(">HHI")
_DATA_HEAD = struct.Struct(">II")


@dataclass
class ControlFrame:
    """A decoded control frame: `fields` by LAYOUTS name, plus the decoded tail."""

    type: FrameType
    flags: int = 0
    fields: dict[str, int] = field(default_factory=dict)
    headers: dict[str, str] | None = None
    settings: list[tuple[int, int, int]] | None = None  # (flags, id, value)

    def __getitem__(self, name: str) -> int:
        return self.fields.get(name, 0)


@dataclass
class DataFrame:
    stream_id: int
    flags: int
    data: bytes


def pack_bits(layout: tuple[tuple[str, int], ...], values: dict[str, int]) -> bytes:
    """Pack `values` into the big-endian bit fields of `layout` (reserved bits zero)."""
    acc, width = 0, 0
    for name, bits in layout:
        v = 0 if name == "_" else values.get(name, 0)
        if v < 0 or v >> bits:
            raise ValueError(f"field {name}={v} does not fit {bits} bits")
        acc, width = (acc << bits) | v, width + bits
    return acc.to_bytes(width // 8, "big")


def unpack_bits(layout: tuple[tuple[str, int], ...], raw: bytes) -> dict[str, int]:
    """Inverse of pack_bits; `raw` must be exactly the layout's size."""
    acc, shift, out = int.from_bytes(raw, "big"), len(raw) * 8, {}
    for name, bits in layout:
        shift -= bits
        if name != "_":
            out[name] = (acc >> shift) & ((1 << bits) - 1)
    return out


def layout_size(layout: tuple[tuple[str, int], ...]) -> int:
    return sum(bits for _, bits in layout) // 8


def control_head(ftype: int, flags: int, length: int) -> bytes:
    if length > MAX_LENGTH:
        raise ValueError(f"control frame payload of {length} bytes exceeds 24 bits")
    return _CONTROL_HEAD.pack(0x8000 | VERSION, ftype, (flags << 24) | length)


def data_head(stream_id: int, flags: int, length: int) -> bytes:
    if length > MAX_LENGTH:
        raise ValueError(f"data frame payload of {length} bytes exceeds 24 bits")
    return _DATA_HEAD.pack(stream_id & 0x7FFFFFFF, (flags << 24) | length)


@dataclass(frozen=True)
class FrameHead:
    """The first 8 bytes of a frame, parsed."""

    control: bool
    version: int
    type: int  # control: frame type; data: stream id
    flags: int
    length: int


def parse_head(raw: bytes) -> FrameHead:
    first, second, word = _CONTROL_HEAD.unpack(raw)
    flags, length = word >> 24, word & MAX_LENGTH
    if first & 0x8000:
        return FrameHead(True, first & 0x7FFF, second, flags, length)
    return FrameHead(False, 0, (first << 16) | second, flags, length)


def encode_control(frame: ControlFrame, header_block: bytes = b"") -> bytes:
    """Encode a control frame; `header_block` is the already compressed block."""
    layout, tail_kind = LAYOUTS[frame.type]
    fields = dict(frame.fields)
    tail = b""
    if tail_kind == "headers":
        tail = header_block
    elif tail_kind == "settings":
        entries = frame.settings or []
        fields["count"] = len(entries)
        tail = b"".join(pack_bits(SETTING_ENTRY, {"flags": f, "id": i, "value": v})
                        for f, i, v in entries)
    payload = pack_bits(layout, fields) + tail
    return control_head(frame.type, frame.flags, len(payload)) + payload


def decode_control(head: FrameHead, payload: bytes) -> tuple[ControlFrame, bytes]:
    """Decode the fixed part; return the frame and its undecoded header block (or b"").

    Raises:
        ProtocolError: the payload is shorter than the layout or its SETTINGS count.
    """
    ftype = FrameType(head.type)
    layout, tail_kind = LAYOUTS[ftype]
    size = layout_size(layout)
    if len(payload) < size:
        raise ProtocolError(f"SPDY {ftype.name} frame of {len(payload)} bytes, need {size}")
    frame = ControlFrame(ftype, head.flags, unpack_bits(layout, payload[:size]))
    tail = payload[size:]
    if tail_kind == "settings":
        n = frame["count"]
        if len(tail) != n * 8:
            raise ProtocolError(f"SPDY SETTINGS declares {n} entries in {len(tail)} bytes")
        frame.settings = []
        for i in range(n):
            e = unpack_bits(SETTING_ENTRY, tail[i * 8:i * 8 + 8])
            frame.settings.append((e["flags"], e["id"], e["value"]))
        return frame, b""
    return frame, tail if tail_kind == "headers" else b""
