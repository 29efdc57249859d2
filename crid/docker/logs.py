"""`docker logs` from the CRI log file the monitor writes (`<RFC3339Nano> <stream> <P|F> text`).

Each line keeps its stream, so stdout and stderr leave as Docker's multiplexed frames (raw
bytes for a tty container). Follow mode reads on while the container runs.
"""

from __future__ import annotations

import calendar
import re
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from crid.docker.errors import BadRequest

STDIN, STDOUT, STDERR = 0, 1, 2
FOLLOW_POLL = 0.1
_STREAMS = {b"stdout": STDOUT, b"stderr": STDERR}


def frame(stream: int, payload: bytes) -> bytes:
    """Docker's stream frame: [stream, 0, 0, 0, big-endian uint32 size] + payload."""
    return struct.pack(">BxxxI", stream, len(payload)) + payload


@dataclass(frozen=True)
class LogOptions:
    stdout: bool = True
    stderr: bool = True
    follow: bool = False
    timestamps: bool = False
    since: float = 0.0  # unix seconds; 0 = from the start
    until: float = 0.0  # 0 = no end
    tail: int | None = None  # last N lines; None = all
    tty: bool = False


_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:h|m|s|ms|us|ns))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|ns|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def parse_time(text: str) -> float:
    """Docker's since/until: unix seconds (with fraction), RFC 3339, or a Go duration
    ("24h", "1h30m") meaning that long ago.

    Raises:
        BadRequest: none of these.
    """
    if not text:
        return 0.0
    try:
        return float(text)
    except ValueError:
        pass
    if _DURATION.match(text):
        return time.time() - sum(float(n) * _UNIT_SECONDS[u]
                                 for n, u in _DURATION_PART.findall(text))
    try:
        base = calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        raise BadRequest(f"invalid time {text[:40]!r}: want unix seconds or RFC 3339") from None
    return float(base)


@dataclass(frozen=True)
class _Line:
    stamp: bytes
    stream: int
    text: bytes  # with its newline when the entry was Full

    @property
    def seconds(self) -> float:
        try:
            return calendar.timegm(time.strptime(self.stamp[:19].decode(), "%Y-%m-%dT%H:%M:%S")
                                   ) + float("0" + self.stamp[19:].split(b"Z")[0].split(
                                       b"+")[0].decode() or "0")
        except ValueError:
            return 0.0


def _parse(raw: bytes) -> _Line | None:
    parts = raw.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in _STREAMS:
        return None
    text = parts[3] if len(parts) == 4 else b""
    return _Line(parts[0], _STREAMS[parts[1]], text + (b"\n" if parts[2] == b"F" else b""))


def _read_lines(path: str, running: Callable[[], bool], follow: bool) -> Iterator[_Line]:
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return
    with fh:
        pending = b""
        while True:
            chunk = fh.readline()
            if chunk.endswith(b"\n"):
                line = _parse(pending + chunk[:-1])
                pending = b""
                if line is not None:
                    yield line
                continue
            pending += chunk
            if not follow:
                return
            if not running():
                follow = False  # one more pass: what was written before the exit
                continue
            time.sleep(FOLLOW_POLL)


def log_stream(path: str, opts: LogOptions, running: Callable[[], bool]) -> Iterator[bytes]:
    """The body of GET /containers/{id}/logs."""
    wanted = {STDOUT} if opts.stdout else set()
    if opts.stderr:
        wanted.add(STDERR)
    lines: Iterator[_Line] = (ln for ln in _read_lines(path, running, opts.follow)
                              if ln.stream in wanted)
    lines = (ln for ln in lines if not opts.since or ln.seconds >= opts.since)
    if opts.until:
        lines = (ln for ln in lines if ln.seconds <= opts.until)
    if opts.tail is not None and opts.tail >= 0:
        if opts.follow:
            lines = _tail_then_follow(path, opts, running, wanted)
        else:
            lines = iter(deque(lines, maxlen=opts.tail) if opts.tail else [])
    for ln in lines:
        payload = (ln.stamp + b" " + ln.text) if opts.timestamps else ln.text
        yield payload if opts.tty else frame(ln.stream, payload)


def _tail_then_follow(path: str, opts: LogOptions, running: Callable[[], bool],
                      wanted: set[int]) -> Iterator[_Line]:
    assert opts.tail is not None
    existing = [ln for ln in _read_lines(path, lambda: False, False) if ln.stream in wanted]
    yield from existing[len(existing) - opts.tail:] if opts.tail else []
    seen = len(list(_read_lines(path, lambda: False, False)))
    for i, ln in enumerate(_read_lines(path, running, True)):
        if i >= seen and ln.stream in wanted:
            yield ln
