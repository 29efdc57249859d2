"""Options, duration parsing, request validation, tokens, exit statuses, channel framing."""

from __future__ import annotations

import json

import pytest

from crid.streaming.protocol import (
    AttachRequest,
    ExecRequest,
    PortForwardRequest,
    RequestError,
    StreamingOptions,
    TerminalSize,
    parse_duration,
)
from crid.streaming.protocol.errors import ProtocolError
from crid.streaming.protocol.remotecommand import ResizeDecoder
from crid.streaming.protocol.requests import validate_attach, validate_exec, validate_port_forward
from crid.streaming.protocol.status import decode_exit_code, encode_status, exit_status
from crid.streaming.protocol.tokens import TokenCache
from crid.streaming.protocol.wschannels import decode_ws_frame, encode_ws_frame


@pytest.mark.parametrize("text,seconds", [
    ("4h", 14400.0), ("1h30m", 5400.0), ("500ms", 0.5), ("1m30s", 90.0), (3, 3.0), (0.5, 0.5),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "4 hours", "h", "-1s", "1h-", "1d", -2])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(RequestError):
        parse_duration(text)


def test_options_defaults_and_checks() -> None:
    opts = StreamingOptions()
    assert (opts.address, opts.port, opts.idle_seconds, opts.token_seconds) == \
        ("127.0.0.1", 0, 14400.0, 60.0)
    with pytest.raises(RequestError):
        StreamingOptions(idle_timeout="forever")
    with pytest.raises(RequestError):
        StreamingOptions(tls_cert="/c.pem")


def test_tokens_single_use_and_expiry() -> None:
    now = [0.0]
    cache = TokenCache(ttl=60, capacity=2, clock=lambda: now[0])
    t1 = cache.put("exec", "req1")
    assert cache.consume("attach", t1) is None  # wrong kind also burns it
    t2 = cache.put("exec", "req2")
    assert cache.consume("exec", t2) == "req2"
    assert cache.consume("exec", t2) is None
    t3 = cache.put("exec", "req3")
    now[0] = 61
    assert cache.consume("exec", t3) is None
    cache.put("a", 1)
    cache.put("a", 2)
    with pytest.raises(RequestError, match="too many"):
        cache.put("a", 3)
    assert len(t1) >= 32


def test_request_validation() -> None:
    assert validate_exec(ExecRequest("c", ("ls",), tty=True, stderr=True)).stderr is False
    with pytest.raises(RequestError, match="command"):
        validate_exec(ExecRequest("c", ()))
    with pytest.raises(RequestError, match="one of stdin"):
        validate_attach(AttachRequest("c", stdin=False, stdout=False, stderr=False))
    with pytest.raises(RequestError, match="container id"):
        validate_exec(ExecRequest("../x", ("ls",)))
    with pytest.raises(RequestError, match="port"):
        validate_port_forward(PortForwardRequest("p", (0,)))
    assert validate_port_forward(PortForwardRequest("p", [80])).ports == (80,)  # type: ignore


def test_exit_status_json_as_the_kubelet_writes_it() -> None:
    assert encode_status(exit_status(0), True) == b'{"metadata":{},"status":"Success"}'
    failure = json.loads(encode_status(exit_status(137), True))
    assert failure["status"] == "Failure" and failure["reason"] == "NonZeroExitCode"
    assert failure["details"] == {"causes": [{"reason": "ExitCode", "message": "137"}]}
    assert decode_exit_code(encode_status(exit_status(137), True))[0] == 137
    assert encode_status(exit_status(0), False) == b""
    assert decode_exit_code(b"") == (0, None)


def test_ws_channel_framing() -> None:
    assert encode_ws_frame(1, b"hi", True) == (b"\x01hi", False)
    assert encode_ws_frame(2, b"\xff", False) == (b"2/w==", True)
    assert decode_ws_frame(b"\x00data", True) == (0, b"data")
    assert decode_ws_frame(b"0aGk=", False) == (0, b"hi")
    for bad, binary in ((b"", True), (b"x!!", False), (b"0***", False)):
        with pytest.raises(ProtocolError):
            decode_ws_frame(bad, binary)


def test_resize_decoder_splits_concatenated_json() -> None:
    d = ResizeDecoder()
    assert d.feed(b'{"Width":80,"Height":24}\n{"Width":1') == [TerminalSize(80, 24)]
    assert d.feed(b'00,"Height":50}') == [TerminalSize(100, 50)]
    with pytest.raises(ProtocolError):
        d.feed(b'{"Width":"x"}')
