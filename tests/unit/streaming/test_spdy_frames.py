"""SPDY/3.1 frames against hand-written byte vectors laid out as in the draft (section 2.6)."""

from __future__ import annotations

import zlib

import pytest

from crid.streaming.protocol.errors import ProtocolError
from crid.streaming.protocol.spdy import frames as F
from crid.streaming.protocol.spdy.dictionary import DICTIONARY
from crid.streaming.protocol.spdy.headers import HeaderCompressor, HeaderDecompressor, encode_block

# Each vector: the frame, then its bytes written out field by field.
VECTORS = [
    (F.ControlFrame(F.FrameType.RST_STREAM, 0, {"stream_id": 5, "status": 5}),
     "8003 0003 00 000008 | 00000005 | 00000005"),
    (F.ControlFrame(F.FrameType.PING, 0, {"ping_id": 0x01020304}),
     "8003 0006 00 000004 | 01020304"),
    (F.ControlFrame(F.FrameType.GOAWAY, 0, {"last_good_stream_id": 7, "status": 1}),
     "8003 0007 00 000008 | 00000007 | 00000001"),
    (F.ControlFrame(F.FrameType.WINDOW_UPDATE, 0, {"stream_id": 1, "delta": 0x10000}),
     "8003 0009 00 000008 | 00000001 | 00010000"),
    (F.ControlFrame(F.FrameType.WINDOW_UPDATE, 0, {"stream_id": 0x7FFFFFFF, "delta": 0x7FFFFFFF}),
     "8003 0009 00 000008 | 7fffffff | 7fffffff"),
    (F.ControlFrame(F.FrameType.SETTINGS, 0, {}, settings=[(0, 7, 0x100000), (1, 4, 100)]),
     "8003 0004 00 000014 | 00000002 | 00 000007 00100000 | 01 000004 00000064"),
]


def hx(spec: str) -> bytes:
    return bytes.fromhex(spec.replace("|", "").replace(" ", ""))


@pytest.mark.parametrize("frame,wire", VECTORS)
def test_control_frames_encode_to_the_draft_layout(frame: F.ControlFrame, wire: str) -> None:
    assert F.encode_control(frame) == hx(wire)


@pytest.mark.parametrize("frame,wire", VECTORS)
def test_control_frames_decode_from_the_draft_layout(frame: F.ControlFrame, wire: str) -> None:
    raw = hx(wire)
    head = F.parse_head(raw[:8])
    assert (head.control, head.version, head.type, head.length) == \
        (True, 3, frame.type, len(raw) - 8)
    decoded, block = F.decode_control(head, raw[8:])
    assert (decoded.fields, decoded.settings or None, block) == \
        ({k: v for k, v in frame.fields.items() if k != "count"} | decoded.fields,
         frame.settings, b"")
    assert all(decoded[k] == v for k, v in frame.fields.items())


def test_reserved_bits_are_ignored_on_decode() -> None:
    raw = hx("8003 0003 00 000008 | 80000005 | 00000005")  # high (reserved) bit set
    frame, _ = F.decode_control(F.parse_head(raw[:8]), raw[8:])
    assert frame["stream_id"] == 5


def test_data_frame_layout() -> None:
    assert F.data_head(3, F.FLAG_FIN, 5) + b"hello" == hx("00000003 01 000005") + b"hello"
    head = F.parse_head(hx("00000003 01 000005"))
    assert (head.control, head.type, head.flags, head.length) == (False, 3, 1, 5)


def test_syn_stream_layout_with_header_block() -> None:
    frame = F.ControlFrame(F.FrameType.SYN_STREAM, F.FLAG_FIN,
                           {"stream_id": 1, "associated_id": 0, "priority": 7, "slot": 0})
    raw = F.encode_control(frame, b"BLOCK")
    # flags 01, length 10+5; stream id; associated id; pri(3 bits)=7 unused(5) ; slot
    assert raw == hx("8003 0001 01 00000f | 00000001 | 00000000 | e0 | 00") + b"BLOCK"
    decoded, block = F.decode_control(F.parse_head(raw[:8]), raw[8:])
    assert (decoded["stream_id"], decoded["priority"], decoded.flags, block) == (1, 7, 1, b"BLOCK")


def test_syn_reply_and_headers_layout() -> None:
    for ftype, code in ((F.FrameType.SYN_REPLY, "0002"), (F.FrameType.HEADERS, "0008")):
        raw = F.encode_control(F.ControlFrame(ftype, 0, {"stream_id": 2}), b"xy")
        assert raw == hx(f"8003 {code} 00 000006 | 00000002") + b"xy"


def test_uncompressed_header_block_layout() -> None:
    block = encode_block({"StreamType": "error", "port": "80"})
    assert block == (hx("00000002") + hx("0000000a") + b"streamtype" + hx("00000005") + b"error"
                     + hx("00000004") + b"port" + hx("00000002") + b"80")


def test_dictionary_is_the_spdy3_one() -> None:
    assert (len(DICTIONARY), zlib.adler32(DICTIONARY)) == (1423, 0xE3C6A7C2)


def test_compressed_block_announces_the_dictionary_id() -> None:
    block = HeaderCompressor().compress({"streamtype": "stdout"})
    # zlib header with FDICT, then DICTID = adler32(dictionary)
    assert block[0] == 0x78 and block[1] & 0x20 and block[2:6] == hx("e3c6a7c2")
    plain = zlib.decompressobj(zdict=DICTIONARY).decompress(block)
    assert plain == encode_block({"streamtype": "stdout"})


def test_shared_context_across_blocks() -> None:
    comp, decomp = HeaderCompressor(), HeaderDecompressor()
    blocks = [comp.compress({"streamtype": t, "port": "8080"}) for t in ("error", "data") * 3]
    assert len(blocks[-1]) < len(blocks[0])  # later blocks reuse the shared window
    assert [decomp.decompress(b)["streamtype"] for b in blocks] == ["error", "data"] * 3


def test_header_bomb_is_refused() -> None:
    z = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY, DICTIONARY)
    bomb = z.compress(encode_block({"x": "A" * (32 << 20)})) + z.flush(zlib.Z_SYNC_FLUSH)
    with pytest.raises(ProtocolError, match="compression bomb"):
        HeaderDecompressor().decompress(bomb)


@pytest.mark.parametrize("block", [
    hx("00000001 0000000a") + b"stream",                      # name past the end
    hx("00000001 00000001") + b"a" + hx("00000010") + b"v",   # value past the end
    hx("00000002 00000001") + b"a" + hx("00000000"),          # count past the end
    hx("00000000") + b"junk",                                 # trailing bytes
    hx("00000001 00000000 00000000"),                         # empty name
])
def test_bad_header_blocks(block: bytes) -> None:
    z = zlib.compressobj(zdict=DICTIONARY)
    with pytest.raises(ProtocolError):
        HeaderDecompressor().decompress(z.compress(block) + z.flush(zlib.Z_SYNC_FLUSH))


def test_not_zlib_is_refused() -> None:
    with pytest.raises(ProtocolError, match="does not decompress"):
        HeaderDecompressor().decompress(b"\x00\x01garbage")


def test_short_control_payload_is_refused() -> None:
    with pytest.raises(ProtocolError, match="need 8"):
        F.decode_control(F.parse_head(hx("8003 0003 00 000004")), hx("00000005"))


def test_settings_count_must_match() -> None:
    raw = hx("8003 0004 00 00000c | 00000002 | 00 000007 00100000")
    with pytest.raises(ProtocolError, match="SETTINGS"):
        F.decode_control(F.parse_head(raw[:8]), raw[8:])
