"""systemd's notification protocol (sd_notify(3)): READY=1, STOPPING=1, WATCHDOG=1.

A notification is one datagram to the unix socket named by $NOTIFY_SOCKET, an abstract one when
the name starts with "@". The variables are taken out of the environment when read, so that
nothing crid starts (zygote, CNI plugins, hooks) speaks for crid.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass

import structlog

log = structlog.get_logger("crid.sd_notify")


@dataclass(frozen=True)
class Notifier:
    """Where to send notifications (None: not run by systemd) and the watchdog interval."""

    address: str | None = None
    watchdog_seconds: float = 0.0

    @classmethod
    def from_env(cls, env: MutableMapping[str, str]) -> Notifier:
        """Reads and removes NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from env."""
        address = env.pop("NOTIFY_SOCKET", "") or None
        usec, pid = env.pop("WATCHDOG_USEC", ""), env.pop("WATCHDOG_PID", "")
        seconds = 0.0
        if usec.isdigit() and (not pid or pid == str(os.getpid())):
            seconds = int(usec) / 1e6
        return cls(address, seconds)

    def notify(self, *fields: str) -> None:
        """Sends "KEY=VALUE" fields as one message; a failure is logged, never raised (a
        daemon does not stop serving because its supervisor's socket went away)."""
        if self.address is None:
            return
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
                s.connect(target)
                s.sendall("\n".join(fields).encode())
        except OSError as e:
            log.warning("cannot notify systemd", socket=self.address, error=str(e))

    def start_watchdog(self, stopped: threading.Event,
                       healthy: Callable[[], bool]) -> threading.Thread | None:
        """Pings WATCHDOG=1 every half interval (as sd_watchdog_enabled(3) advises) while
        `healthy()` says the daemon serves, until `stopped` is set; None when systemd asked
        for no watchdog. A daemon that stops answering misses pings and is restarted."""
        if self.address is None or self.watchdog_seconds <= 0:
            return None
        thread = threading.Thread(target=self._ping, args=(stopped, healthy),
                                  name="sd-watchdog", daemon=True)
        thread.start()
        return thread

    def _ping(self, stopped: threading.Event, healthy: Callable[[], bool]) -> None:
        interval = self.watchdog_seconds / 2
        while not stopped.wait(interval):
            if healthy():
                self.notify("WATCHDOG=1")
            else:
                log.warning("watchdog ping skipped: the CRI socket does not answer")
