"""systemd readiness (Type=notify) on a notification socket the test binds: READY=1 once both
CRI services answer, STOPPING=1 on SIGTERM, WATCHDOG=1 when WATCHDOG_USEC is set."""

from __future__ import annotations

import secrets
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from crid.api import api_pb2 as pb
from tests.rig.daemon import CridProcess, start_crid


class NotifySocket:
    """The supervisor's end: a datagram socket bound to a path or an abstract name."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + name[1:] if name.startswith("@") else name)
        self.sock.settimeout(60)

    def next(self) -> dict[str, str]:
        data = self.sock.recv(4096).decode()
        return dict(line.split("=", 1) for line in data.splitlines())

    def until(self, key: str) -> dict[str, str]:
        while key not in (message := self.next()):
            pass
        return message


@pytest.fixture(params=["path", "abstract"])
def notify(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NotifySocket]:
    name = str(tmp_path / "notify.sock") if request.param == "path" \
        else f"@crt-notify-{secrets.token_hex(6)}"
    ns = NotifySocket(name)
    yield ns
    ns.sock.close()


def _start(tmp_path: Path, notify: NotifySocket, **env: str) -> CridProcess:
    return start_crid(tmp_path, env={"NOTIFY_SOCKET": notify.name, **env}, wait=False)


def test_ready_only_once_both_services_answer(tmp_path: Path, notify: NotifySocket) -> None:
    daemon = _start(tmp_path, notify)
    try:
        ready = notify.next()  # the first message crid sends
        assert ready["READY"] == "1" and ready["MAINPID"] == str(daemon.proc.pid)
        assert ready["STATUS"] == f"serving on unix://{daemon.socket}"
        # No retry, no wait-for-ready: when READY=1 arrives the socket answers at once.
        assert daemon.runtime.Version(pb.VersionRequest(), timeout=5).runtime_name == "crid"
        assert daemon.images.ImageFsInfo(pb.ImageFsInfoRequest(), timeout=5).image_filesystems
        log = daemon.log()
        assert log.index('"method": "Version"') < log.index('"method": "ImageFsInfo"')
    finally:
        daemon.stop()


def test_stopping_on_sigterm(tmp_path: Path, notify: NotifySocket) -> None:
    daemon = _start(tmp_path, notify)
    assert notify.until("READY")["READY"] == "1"
    daemon.proc.send_signal(signal.SIGTERM)
    assert notify.until("STOPPING") == {"STOPPING": "1"}
    assert daemon.stop() == 0


def test_watchdog_pings_when_asked(tmp_path: Path, notify: NotifySocket) -> None:
    daemon = _start(tmp_path, notify, WATCHDOG_USEC="300000")
    try:
        assert notify.until("READY")["READY"] == "1"
        assert notify.next() == {"WATCHDOG": "1"}
        assert notify.next() == {"WATCHDOG": "1"}
    finally:
        assert daemon.stop() == 0


def test_no_watchdog_for_another_pid(tmp_path: Path, notify: NotifySocket) -> None:
    daemon = _start(tmp_path, notify, WATCHDOG_USEC="100000", WATCHDOG_PID="1")
    try:
        assert notify.until("READY")["READY"] == "1"
        daemon.proc.send_signal(signal.SIGTERM)
        assert notify.next() == {"STOPPING": "1"}  # no WATCHDOG=1 came in between
    finally:
        assert daemon.stop() == 0


def test_children_do_not_inherit_the_notify_socket(tmp_path: Path,
                                                   notify: NotifySocket) -> None:
    daemon = _start(tmp_path, notify, WATCHDOG_USEC="60000000")
    try:
        notify.until("READY")
        kids = Path(f"/proc/{daemon.proc.pid}/task/{daemon.proc.pid}/children").read_text()
        for kid in kids.split():
            environ = Path(f"/proc/{kid}/environ").read_bytes().split(b"\0")
            assert not [v for v in environ if v.startswith((b"NOTIFY_SOCKET=", b"WATCHDOG_"))]
        assert kids.split()
    finally:
        assert daemon.stop() == 0
