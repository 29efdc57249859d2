"""Pure pieces of the monitor: attach framing, CRI log records, exit records."""

from __future__ import annotations

import os

import pytest

from runtime.monitor import framing
from runtime.monitor.crilog import format_records
from runtime.monitor.exitfile import ExitStatus, read_exit_file, rfc3339_nano, write_exit_file

TS = "2016-10-06T00:17:09.669794202Z"


def test_frames_roundtrip_in_pieces() -> None:
    data = (framing.encode(framing.STDIN, b"abc") + framing.encode_resize(24, 80)
            + framing.encode(framing.CLOSE_STDIN))
    reader = framing.FrameReader()
    frames = []
    for i in range(len(data)):
        frames += reader.feed(data[i:i + 1])
    assert frames == [(framing.STDIN, b"abc"), (framing.RESIZE, b"\x00\x18\x00\x50"),
                      (framing.CLOSE_STDIN, b"")]


def test_frame_errors() -> None:
    with pytest.raises(framing.FrameError):
        framing.FrameReader().feed(b"\x63\x00\x00\x00\x00")
    with pytest.raises(framing.FrameError):
        framing.FrameReader().feed(b"\x00\xff\xff\xff\xff")


def test_log_records_full_and_partial() -> None:
    assert format_records(1, b"a\nb\n", TS) == (
        f"{TS} stdout F a\n{TS} stdout F b\n".encode())
    assert format_records(2, b"x\npart", TS) == (
        f"{TS} stderr F x\n{TS} stderr P part\n".encode())
    assert format_records(1, b"\n", TS) == f"{TS} stdout F \n".encode()


def test_rfc3339_nano() -> None:
    assert rfc3339_nano(1475713029_669794202) == TS
    assert rfc3339_nano(1_000_000_000) == "1970-01-01T00:00:01.000000000Z"
    assert ExitStatus(1, 0, None, False, TS).finished_at_ns == 1475713029_669794202


def test_exit_status_from_wait_status(tmp_path) -> None:  # type: ignore[no-untyped-def]
    killed = ExitStatus.from_wait_status(5, 9, oom_killed=True)
    assert (killed.exit_code, killed.signal, killed.oom_killed) == (137, 9, True)
    exited = ExitStatus.from_wait_status(5, 3 << 8, oom_killed=False)
    assert (exited.exit_code, exited.signal) == (3, None)
    path = str(tmp_path / "exit")
    assert read_exit_file(path) is None
    write_exit_file(path, killed)
    assert read_exit_file(path) == killed
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []
    with pytest.raises(ValueError):
        ExitStatus.from_json(b"{}")
