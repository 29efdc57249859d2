"""SPDY/3 header blocks: the name/value encoding and its zlib compression.

Each direction of a session has one zlib context, shared by all its header blocks (draft 3.1,
section 2.6.10): blocks are compressed with a sync flush so each frame is decodable on arrival.
Decompressed blocks are capped (a few hundred bytes of zlib can expand to gigabytes).
"""

from __future__ import annotations

import struct
import zlib

from crid.streaming.protocol.errors import ProtocolError
from crid.streaming.protocol.spdy.dictionary import DICTIONARY

MAX_HEADER_BLOCK = 64 * 1024
_U32 = struct.Struct(">I")


def encode_block(headers: dict[str, str]) -> bytes:
    """The uncompressed block: count, then (len, name, len, value); names lowercased.

    Several values of one name are joined with NUL, as the draft says.
    """
    parts = [_U32.pack(len(headers))]
    for name, value in headers.items():
        n, v = name.lower().encode(), value.encode()
        parts += [_U32.pack(len(n)), n, _U32.pack(len(v)), v]
    return b"".join(parts)


def decode_block(block: bytes) -> dict[str, str]:
    """Parse an uncompressed block; names are lowercased.

    Raises:
        ProtocolError: a length runs past the end, a name is empty, or bytes are left over.
    """
    def take(pos: int, what: str) -> tuple[bytes, int]:
        if pos + 4 > len(block):
            raise ProtocolError(f"SPDY header block truncated reading {what} length")
        (n,) = _U32.unpack_from(block, pos)
        if pos + 4 + n > len(block):
            raise ProtocolError(f"SPDY header {what} of {n} bytes runs past the block end")
        return block[pos + 4:pos + 4 + n], pos + 4 + n

    if len(block) < 4:
        raise ProtocolError("SPDY header block shorter than its count")
    (count,) = _U32.unpack_from(block, 0)
    pos, out = 4, {}
    for _ in range(count):
        name, pos = take(pos, "name")
        value, pos = take(pos, "value")
        if not name:
            raise ProtocolError("SPDY header with an empty name")
        out[name.decode("latin-1").lower()] = value.decode("latin-1")
    if pos != len(block):
        raise ProtocolError(f"SPDY header block has {len(block) - pos} trailing bytes")
    return out


class HeaderCompressor:
    """One direction's zlib compressor (keeps its context across blocks)."""

    def __init__(self) -> None:
        self._z = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8,
                                   zlib.Z_DEFAULT_STRATEGY, DICTIONARY)

    def compress(self, headers: dict[str, str]) -> bytes:
        return self._z.compress(encode_block(headers)) + self._z.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    """One direction's zlib decompressor with a cap on each decompressed block."""

    def __init__(self, limit: int = MAX_HEADER_BLOCK) -> None:
        self._z = zlib.decompressobj(zdict=DICTIONARY)
        self._limit = limit

    def decompress(self, data: bytes) -> dict[str, str]:
        """Raises ProtocolError on bad zlib data or a block past the limit."""
        try:
            block = self._z.decompress(data, self._limit + 1)
        except zlib.error as e:
            raise ProtocolError(f"SPDY header block does not decompress: {e}") from e
        if len(block) > self._limit or self._z.unconsumed_tail:
            raise ProtocolError(
                f"SPDY header block decompresses past {self._limit} bytes (compression bomb?)")
        return decode_block(block)
