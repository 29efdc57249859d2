"""The exit file: how a container ended, written once, atomically, by its monitor.

JSON object: ``{"pid": int, "exit_code": int, "signal": int|null, "oom_killed": bool,
"finished_at": "<RFC3339Nano UTC>"}``. ``exit_code`` follows the shell convention: 128+signal
when the process was killed by a signal (137 after SIGKILL).
"""

from __future__ import annotations

import json
import os
import time

from runtime.linux.atomic import write_atomic
from runtime.records import asdict, dataclass


def rfc3339_nano(ns: int | None = None) -> str:
    """UTC timestamp with nine fractional digits, as the kubelet's CRI log parser expects."""
    ns = time.time_ns() if ns is None else ns
    sec, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac:09d}Z"


@dataclass(frozen=True)
class ExitStatus:
    """How a container's process ended."""

    pid: int
    exit_code: int
    signal: int | None
    oom_killed: bool
    finished_at: str

    @classmethod
    def from_wait_status(cls, pid: int, status: int, oom_killed: bool) -> ExitStatus:
        """Build from a waitpid(2) status word."""
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            return cls(pid, 128 + sig, sig, oom_killed, rfc3339_nano())
        return cls(pid, os.waitstatus_to_exitcode(status), None, oom_killed, rfc3339_nano())

    @property
    def finished_at_ns(self) -> int:
        """``finished_at`` as nanoseconds since the epoch."""
        import calendar

        whole, frac = self.finished_at.rstrip("Z").split(".")
        sec = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        return sec * 1_000_000_000 + int(frac.ljust(9, "0")[:9])

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> ExitStatus:
        """Parse an exit record. Raises ValueError on a malformed record."""
        try:
            d = json.loads(data)
            return cls(int(d["pid"]), int(d["exit_code"]),
                       None if d["signal"] is None else int(d["signal"]),
                       bool(d["oom_killed"]), str(d["finished_at"]))
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise ValueError(f"malformed exit record: {e}") from e


def write_exit_file(path: str, status: ExitStatus) -> None:
    """Write the exit record atomically (temp + rename; no fsyncs: like the state it is about
    a process, which a reboot ends anyway)."""
    write_atomic(path, status.to_json(), durable=False)


def read_exit_file(path: str) -> ExitStatus | None:
    """The recorded exit, or None when the file does not exist (yet)."""
    try:
        with open(path, "rb") as f:
            return ExitStatus.from_json(f.read())
    except FileNotFoundError:
        return None
