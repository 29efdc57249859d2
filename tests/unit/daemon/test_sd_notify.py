"""The notification protocol's environment handling and datagrams (no systemd needed)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from crid.sd_notify import Notifier


def test_env_is_read_and_removed() -> None:
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid()),
           "PATH": "/bin"}
    assert Notifier.from_env(env) == Notifier("@x", 2.0)
    assert env == {"PATH": "/bin"}


def test_watchdog_for_another_process_is_not_ours() -> None:
    env = {"NOTIFY_SOCKET": "/n", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}
    assert Notifier.from_env(env) == Notifier("/n", 0.0)
    assert Notifier.from_env({}) == Notifier(None, 0.0)


def test_datagram_to_a_path(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(tmp_path / "n"))
        Notifier(str(tmp_path / "n")).notify("READY=1", "STATUS=ok")
        assert s.recv(100) == b"READY=1\nSTATUS=ok"


def test_a_missing_socket_is_not_fatal(tmp_path: Path) -> None:
    Notifier(str(tmp_path / "gone")).notify("READY=1")
